//! `spawn_app()`: the real notifications service against a fresh database
//! and JetStream namespace, sending to an in-test SMTP server, with helpers
//! that publish the events it consumes as their services would.

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::events::{
    Event, OrderCreated, OrderStatus, OrderTicket, PaymentCreated, TicketCreated, TicketSnapshot,
    UserCreated,
};
use common::lifecycle::Lifecycle;
use common::testing::{self, TestEnv, eventually};
use notifications::config::{RetrySettings, Settings, SmtpSettings, SmtpTls, TransportSettings};
use uuid::Uuid;

use crate::smtp::{Received, SmtpServer};

/// How long a test waits for something asynchronous.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// The site the mails under test link to.
pub(crate) const PUBLIC_URL: &str = "https://shop.test";

/// The service under test and its SMTP server.
pub(crate) struct TestApp {
    pub(crate) app: testing::TestApp,
    pub(crate) smtp: SmtpServer,
    settings: Settings,
}

/// The service with reminders `reminder_before` the end of a reservation.
pub(crate) async fn spawn_app(reminder_before: Duration) -> TestApp {
    let smtp = SmtpServer::start().await;
    let env = TestEnv::new("notifications-tests").await;
    let settings = Settings {
        common: env.common_settings(),
        database_url: env.db.url.clone(),
        public_url: PUBLIC_URL.into(),
        from: "buytickets <no-reply@shop.test>".into(),
        transport: TransportSettings::Smtp(SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp.port(),
            tls: SmtpTls::None,
            credentials: None,
            timeout: Duration::from_secs(2),
        }),
        reminder_before,
        poll_interval: Duration::from_millis(100),
        retry: RetrySettings {
            min: Duration::from_millis(200),
            max: Duration::from_secs(1),
        },
    };
    let served = settings.clone();
    let app = testing::spawn_app(env, |lifecycle| async move {
        notifications::startup::build(&served, &lifecycle).await
    })
    .await;
    TestApp {
        app,
        smtp,
        settings,
    }
}

/// A user as auth announces them; `prefix` starts the address.
pub(crate) fn user(prefix: &str) -> UserCreated {
    let id = Uuid::now_v7();
    UserCreated {
        id,
        email: format!("{prefix}-{}@test.com", id.simple()),
        version: 0,
    }
}

/// A ticket of `seller`, as tickets announces it.
pub(crate) fn ticket(seller: &UserCreated, title: &str, price: i64) -> TicketCreated {
    TicketCreated(TicketSnapshot {
        id: Uuid::now_v7(),
        version: 0,
        title: title.into(),
        price,
        user_id: seller.id,
        order_id: None,
        details: Default::default(),
    })
}

/// An order of `buyer` for `ticket` running out at `expires_at`.
pub(crate) fn order(
    buyer: &UserCreated,
    ticket: &TicketCreated,
    expires_at: DateTime<Utc>,
) -> OrderCreated {
    OrderCreated {
        id: Uuid::now_v7(),
        version: 0,
        status: OrderStatus::Created,
        user_id: buyer.id,
        expires_at,
        ticket: OrderTicket {
            id: ticket.0.id,
            price: ticket.0.price,
        },
    }
}

/// The payment of `order`.
pub(crate) fn payment(order: &OrderCreated) -> PaymentCreated {
    PaymentCreated {
        id: Uuid::now_v7(),
        order_id: order.id,
        stripe_id: "pi_test".into(),
    }
}

impl TestApp {
    /// Starts another replica of the service: the same database, namespace
    /// and SMTP server. Cancel the lifecycle to stop it.
    pub(crate) async fn replica(&self) -> Lifecycle {
        let lifecycle = Lifecycle::new();
        notifications::startup::build(&self.settings, &lifecycle)
            .await
            .expect("a replica starts");
        lifecycle
    }

    /// Stops the first instance (its listeners, sender and scheduler) and
    /// waits until it has.
    pub(crate) async fn stop(&self) {
        stop(self.app.lifecycle()).await;
    }

    /// Publishes `event` as its service would (a new message id each time).
    pub(crate) async fn publish<E: Event>(&self, event: &E) {
        testing::publish(&self.app.bus, event).await;
    }

    /// The mails received for `to` whose subject starts with `subject`.
    pub(crate) fn mails(&self, to: &str, subject: &str) -> Vec<Received> {
        self.smtp
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to) && m.subject.starts_with(subject))
            .collect()
    }

    /// Waits until `n` mails for `to` with that subject arrived; false if
    /// they did not within [`WAIT`].
    pub(crate) async fn wait_for_mails(&self, to: &str, subject: &str, n: usize) -> bool {
        eventually(WAIT, || async { self.mails(to, subject).len() >= n }).await
    }

    /// How many rows of the `mails` table have `status`.
    pub(crate) async fn mails_with_status(&self, status: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mails WHERE status = $1")
            .bind(status)
            .fetch_one(&self.app.db.pool)
            .await
            .expect("count mails")
    }
}

/// Asserts that exactly one mail for `to` starts with `subject` and that it
/// links to `link` in both parts; returns it.
pub(crate) fn the_one_mail(app: &TestApp, to: &str, subject: &str, link: &str) -> Received {
    let mails = app.mails(to, subject);
    assert_eq!(mails.len(), 1, "one {subject:?} mail to {to}: {mails:#?}");
    let mail = mails.into_iter().next().expect("one mail");
    assert!(
        mail.text.contains(link),
        "{subject:?} text links to {link}: {}",
        mail.text
    );
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{subject:?} HTML links to {link}: {}",
        mail.html
    );
    mail
}

/// Stops the service running on `lifecycle` and waits for its tasks.
pub(crate) async fn stop(lifecycle: &Lifecycle) {
    lifecycle.shutdown.cancel();
    lifecycle.tasks.close();
    lifecycle.tasks.wait().await;
}
