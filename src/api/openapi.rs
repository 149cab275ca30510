//! The OpenAPI 3.1 document, generated from the handlers and their types.
//!
//! The generated document is committed as `docs/openapi.json`; a test regenerates it and fails
//! on any difference (`CURFEW_BLESS=1 cargo test --test integration openapi::` rewrites it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "curfew",
        description = "A cost-aware scheduled scaler for staging infrastructure: environments, \
                       plans, overrides and the audit log.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::environments::list,
        super::environments::detail,
        super::plan::plan,
        super::overrides::create,
        super::overrides::list,
        super::overrides::get_one,
        super::overrides::cancel,
        super::overrides::extend,
        super::audit::page,
        super::healthz,
        super::readyz,
        super::metrics,
        super::openapi_json,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "environments", description = "What is up, why, and what comes next"),
        (name = "overrides", description = "People beating the calendar, within policy"),
        (name = "audit", description = "Who changed what, when and why"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON with a trailing newline, exactly as committed.
pub fn document_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    text.push('\n');
    text
}
