//! The committed OpenAPI document matches the one the code generates.

const COMMITTED: &str = "docs/openapi.json";

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = curfew::api::openapi::document_json();
    crate::support::committed::check(COMMITTED, &generated, "openapi");
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
