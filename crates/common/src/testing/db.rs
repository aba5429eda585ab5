//! A PostgreSQL database of its own for each test, on the machine's server.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The server tests create their databases on (`DATABASE_URL`, default the
/// local `postgres` database).
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test. Names start with `bt_test_`, so
/// leftovers are easy to drop (`scripts/dev test` does).
pub struct TestDatabase {
    /// The database's name (`bt_test_…`).
    pub name: String,
    /// A URL that connects to it.
    pub url: String,
    /// A pool on it, for the test's own queries.
    pub pool: PgPool,
}

impl TestDatabase {
    /// Creates an empty database and applies the shared migrations and `own`.
    pub async fn create(own: &Migrator) -> TestDatabase {
        let db = Self::create_empty().await;
        crate::db::migrate(&db.pool, own)
            .await
            .expect("migrations apply");
        db
    }

    /// Creates an empty database, without migrations: the service under
    /// test migrates it at start-up, as when deployed.
    pub async fn create_empty() -> TestDatabase {
        let admin = admin_database_url();
        let name = format!("bt_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is reachable at DATABASE_URL (run scripts/dev test)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("DATABASE_URL has no database name"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(30)
            .connect(&url)
            .await
            .expect("connect to test database");
        TestDatabase { name, url, pool }
    }

    /// The single number `sql` (a `SELECT count(*) …`) answers.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}
