//! The API document against the routes: every route the API services mount
//! is in the document the suite serves at `/api/openapi.json` and every
//! documented operation is mounted; the published copy the web service
//! serves when deployed is that same document; Swagger UI is served.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Suite, json_of};

/// The methods a route could be mounted with (HEAD and OPTIONS come with GET
/// and CORS, never on their own here).
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The paths a router mounts, read from its `Debug` form: axum has no API
/// that lists them, and its route table (`path_router`, before the
/// `fallback_router`) prints each path as `RouteId(n): "/path"`. The caller
/// checks that the parse finds the routes, so a change of that form fails
/// the test rather than emptying it.
fn mounted_paths(router: &impl std::fmt::Debug) -> BTreeSet<String> {
    let printed = format!("{router:?}");
    let routes = printed
        .split_once("fallback_router")
        .map_or(printed.as_str(), |(routes, _)| routes);
    routes
        .split("RouteId(")
        .skip(1)
        .filter_map(|entry| {
            let (_, rest) = entry.split_once("): \"")?;
            let (path, _) = rest.split_once('"')?;
            Some(path.to_string())
        })
        .collect()
}

/// Every path the four API services mount, from their own routers.
fn paths_of_the_services() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    paths.extend(mounted_paths(&auth::api().split_for_parts().0));
    paths.extend(mounted_paths(&tickets::api().split_for_parts().0));
    paths.extend(mounted_paths(&orders::api().split_for_parts().0));
    paths.extend(mounted_paths(&payments::api().split_for_parts().0));
    paths
}

/// `{name}` segments filled with an id nobody has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS.iter().filter_map(move |method| {
                let key = method.as_str().to_lowercase();
                item.get(&key).map(|_| (method.to_string(), path.clone()))
            })
        })
        .collect()
}

#[tokio::test]
async fn every_mounted_route_is_documented_and_every_documented_operation_is_mounted() {
    let suite = Suite::start(&[]).await;
    let (status, document) = json_of(
        reqwest::get(suite.url("/api/openapi.json"))
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let documented = documented_operations(&document);
    let paths = paths_of_the_services();
    assert!(
        paths.contains("/api/tickets/{id}") && paths.len() >= 8,
        "the routers' paths were read: {paths:?}"
    );

    let documented_paths: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(paths, documented_paths, "mounted paths vs documented paths");

    // A method a path is not mounted with answers 405 (the shared fallback);
    // a handler never does.
    let client = reqwest::Client::new();
    let mut mounted = BTreeSet::new();
    for path in &paths {
        for method in METHODS {
            let response = client
                .request(method.clone(), suite.url(&concrete(path)))
                .send()
                .await
                .expect("probe");
            if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                mounted.insert((method.to_string(), path.clone()));
            }
        }
    }
    assert_eq!(mounted, documented, "mounted operations vs documented ones");
}

#[test]
fn the_published_document_is_the_one_the_services_describe() {
    let live = serde_json::to_value(buytickets_suite::openapi()).expect("json");
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services/web/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&live).expect("json") + "\n";
        std::fs::write(&file, text).expect("writing services/web/openapi.json");
    }
    // Read now, not as compiled into the web service, so that a rewrite counts at once.
    let published: Value = serde_json::from_str(
        &std::fs::read_to_string(&file).expect("reading services/web/openapi.json"),
    )
    .expect("the published document parses");
    assert!(
        published == live,
        "services/web/openapi.json is not the services' document; regenerate it with \
         UPDATE_OPENAPI=1 cargo nextest run -p buytickets-suite the_published_document"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_with_its_assets_and_reads_the_document() {
    let suite = Suite::start(&[]).await;

    let page = reqwest::get(suite.url("/api/docs/")).await.expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("swagger-ui"));
    let css = reqwest::get(suite.url("/api/docs/swagger-ui.css"))
        .await
        .expect("get");
    assert_eq!(css.status(), StatusCode::OK);
    let init = reqwest::get(suite.url("/api/docs/swagger-initializer.js"))
        .await
        .expect("get");
    assert_eq!(init.status(), StatusCode::OK);
    assert!(init.text().await.expect("js").contains("/api/openapi.json"));
}
