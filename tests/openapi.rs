//! The committed OpenAPI document matches the one the code generates.

use std::path::Path;

const COMMITTED: &str = "docs/openapi.json";

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = curfew::api::openapi::document_json();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("CURFEW_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is out of date with the code; regenerate it with \
         `CURFEW_BLESS=1 cargo test --test openapi` and commit the result"
    );
}

#[test]
fn openapi_document_is_version_3_1_and_describes_every_api_route() {
    let document: serde_json::Value =
        serde_json::from_str(&curfew::api::openapi::document_json()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for route in [
        "/api/v1/environments",
        "/api/v1/environments/{name}/plan",
        "/api/v1/overrides",
        "/api/v1/overrides/{id}",
        "/api/v1/audit",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(route), "{route} is missing");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}
