//! The OpenAPI document covers every route, and every documented operation
//! exists.

use std::collections::BTreeSet;

use crate::helpers::spawn_app;

/// The paths the real router serves, read from its `Debug` output (axum
/// lists them as `paths: {RouteId(1): "/api/…", …}`). A nested router's
/// fallback shows up as `/` plus a private catch-all; neither is a route.
fn router_paths() -> BTreeSet<String> {
    let (router, _) = gateway::routes::api().split_for_parts();
    let debug = format!("{router:?}");
    let mut paths: BTreeSet<String> = debug
        .split("RouteId(")
        .skip(1)
        .filter_map(|chunk| {
            let rest = chunk.split_once("): \"")?.1;
            let path = rest.split_once('"')?.0;
            path.starts_with('/').then(|| path.to_owned())
        })
        .collect();
    if paths.iter().any(|p| p.contains("__private__axum_fallback")) {
        paths.retain(|p| !p.contains("__private__axum_fallback") && p != "/");
    }
    assert!(
        paths.contains("/api/auth/signup"),
        "axum's Debug output changed; this test must learn its new shape: {debug}"
    );
    paths
}

#[test]
fn every_route_of_the_router_is_in_the_document() {
    let doc = serde_json::to_value(gateway::openapi()).unwrap();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served = router_paths();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(
        phantom.is_empty(),
        "documented paths that no route serves: {phantom:?}"
    );
}

#[test]
fn every_operation_id_is_unique() {
    let doc = serde_json::to_value(gateway::openapi()).unwrap();
    let mut seen = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(seen.insert(id.clone()), "operationId {id} is used twice");
        }
    }
}

/// The web app's types are generated from its copy of the document; a
/// route or payload changed without `cargo xtask openapi` fails here.
#[test]
fn the_web_apps_copy_of_the_document_is_current() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/openapi.json");
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    let current = format!("{}\n", gateway::openapi().to_pretty_json().unwrap());
    assert!(
        committed == current,
        "{} is not the gateway's current document: run `cargo xtask openapi` and commit \
         web/openapi.json and web/src/api/schema.d.ts",
        file.display()
    );
}

#[tokio::test]
async fn the_document_is_served_and_every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let doc = app.get_json("/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "1");
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let response = app
                .http
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.contains("no such route")),
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
}
