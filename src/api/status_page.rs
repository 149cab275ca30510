//! The status page at `/`: server-rendered HTML that works without JavaScript and reads well
//! on a phone, with a form "keep `<environment>` up until `<time>`" posting to `/keep-up`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use axum::Form;
use axum::extract::{Query, State as AxumState};
use axum::http::{Extensions, HeaderMap};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::environments::{self, EnvironmentView};
use super::overrides::{CreateOverride, check_text, create_override};
use super::{ApiError, AppState, auth};
use crate::calendar::format::{for_people, utc_seconds};
use crate::calendar::{State, Zone};
use crate::domain::Override;
use crate::overrides::resolve_until;

/// The form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct KeepUpForm {
    /// The environment.
    pub environment: String,
    /// `HH:MM` (the next such time in the environment's zone) or a local date and time.
    pub until: String,
    /// Why.
    pub reason: String,
    /// The caller's API token; none when a trusted proxy names the caller.
    #[serde(default)]
    pub token: String,
}

/// Renders the page; `?environment=` preselects the form, `?created=` confirms an override.
pub async fn page(
    AxumState(state): AxumState<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let notice = query
        .get("created")
        .map(|id| Notice::Created(id.chars().filter(char::is_ascii_alphanumeric).collect()));
    render(
        &state,
        StatusCode::OK,
        query.get("environment").map(String::as_str),
        notice,
        wants_token(&state, &headers, &extensions),
    )
    .await
}

/// Whether the form asks for a token: not when a trusted proxy names a person with a role.
fn wants_token(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> bool {
    !auth::signed_in_by_proxy(state, headers, auth::client_address(extensions))
}

/// Handles the form: creates the override, then redirects to the page (303), or shows the
/// page again with the problem.
pub async fn keep_up(
    AxumState(state): AxumState<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<KeepUpForm>,
) -> Response {
    let client = auth::client_address(&extensions);
    match keep_up_override(&state, &form, &headers, client).await {
        Ok(created) => Redirect::to(&format!("/?created={}", created.id)).into_response(),
        Err(err) => {
            let retry_after = err.retry_after_header();
            let mut page = render(
                &state,
                err.status,
                Some(form.environment.as_str()),
                Some(Notice::Failed(err.detail)),
                wants_token(&state, &headers, &extensions),
            )
            .await;
            if let Some((name, value)) = retry_after {
                page.headers_mut().insert(name, value);
            }
            page
        }
    }
}

/// Creates the override the form asks for, sent from `client`.
async fn keep_up_override(
    state: &AppState,
    form: &KeepUpForm,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Override, ApiError> {
    let caller = auth::token_or_proxy_caller(state, Some(form.token.as_str()), headers, client)?;
    check_text("until", &form.until)?;
    let zone = state
        .config
        .environments
        .get(&form.environment)
        .map(|env| state.config.schedule_of(env).zone())
        .unwrap_or(Zone::UTC);
    let until =
        resolve_until(&form.until, zone, state.clock.now()).map_err(ApiError::unprocessable)?;
    let request = CreateOverride {
        environment: form.environment.clone(),
        state: State::Up,
        until: Some(utc_seconds(until)),
        duration: None,
        reason: form.reason.clone(),
    };
    create_override(state, &caller, request).await
}

/// The newest active overrides the page lists per environment.
const SHOWN_OVERRIDES: usize = 5;

enum Notice {
    Created(String),
    Failed(String),
}

async fn render(
    state: &AppState,
    status: StatusCode,
    selected: Option<&str>,
    notice: Option<Notice>,
    token_field: bool,
) -> Response {
    let (list, stored) = environments::public_views(state).await;
    let mut html = String::with_capacity(8 * 1024);
    html.push_str(HEAD);
    html.push_str("<main><h1>curfew</h1>");
    match &notice {
        Some(Notice::Created(id)) => {
            // Who and why stay with the API: the page shows what anyone may see.
            let what = stored
                .iter()
                .find(|o| &o.id == id)
                .map(|o| {
                    let zone = list
                        .environments
                        .iter()
                        .find(|e| e.name == o.environment)
                        .and_then(|e| Zone::named(&e.timezone).ok())
                        .unwrap_or(Zone::UTC);
                    format!(
                        ": {} {} until {}",
                        escape(&o.environment),
                        o.state,
                        escape(&for_people(o.until, zone))
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                html,
                "<p class=\"notice ok\" role=\"status\">Override {} created{what}.</p>",
                escape(id)
            );
        }
        Some(Notice::Failed(detail)) => {
            let _ = write!(
                html,
                "<p class=\"notice error\" role=\"alert\">Not done: {}</p>",
                escape(detail)
            );
        }
        None => {}
    }
    let now = list.at.unwrap_or_else(|| state.clock.now());
    if let Some(at) = list.at {
        let _ = write!(
            html,
            "<p class=\"muted\">As of {} UTC.</p>",
            at.format("%Y-%m-%d %H:%M")
        );
    } else {
        html.push_str("<p class=\"muted\">Waiting for the first reconcile pass.</p>");
    }
    for environment in &list.environments {
        render_environment(&mut html, environment, &stored, now);
    }
    render_form(&mut html, &list.environments, selected, token_field);
    html.push_str("</main></body></html>\n");
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn render_environment(
    html: &mut String,
    environment: &EnvironmentView,
    stored: &[Override],
    now: DateTime<Utc>,
) {
    let zone = Zone::named(&environment.timezone).unwrap_or(Zone::UTC);
    let state = environment.state.as_str();
    let _ = write!(
        html,
        "<section class=\"env\" id=\"env-{name}\"><h2>{name} <span class=\"state {state}\">{state}</span></h2>\
         <p class=\"why\">{reason}</p><dl>",
        name = escape(&environment.name),
        reason = escape(&environment.reason),
    );
    let next = environment
        .next_transition
        .map(|at| for_people(at, zone))
        .unwrap_or_else(|| "none scheduled".to_string());
    let _ = write!(html, "<dt>Next change</dt><dd>{}</dd>", escape(&next));
    let cost = environment
        .cost_per_hour
        .map(|c| format!("${c:.2}"))
        .unwrap_or_else(|| "n/a".to_string());
    let _ = write!(
        html,
        "<dt>Cost per hour</dt><dd>{cost}</dd><dt>Saved this month</dt><dd>n/a</dd></dl>"
    );
    if let Some(degraded) = &environment.degraded {
        let _ = write!(
            html,
            "<div class=\"degraded\"><strong>degraded</strong> since {since}: not seen, so not \
             scaled<ul>",
            since = escape(&for_people(degraded.since, zone)),
        );
        for unseen in &degraded.unseen {
            let _ = write!(
                html,
                "<li>{selection}: {error}</li>",
                selection = escape(&unseen.selection),
                error = escape(&unseen.error),
            );
        }
        html.push_str("</ul></div>");
    }
    render_overrides(html, environment, stored, now, zone);
    html.push_str("</section>");
}

/// The environment's active overrides: how many, and the newest few with their state and end
/// (who and why are for the API with a token).
fn render_overrides(
    html: &mut String,
    environment: &EnvironmentView,
    stored: &[Override],
    now: DateTime<Utc>,
    zone: Zone,
) {
    let count = environment.override_count;
    if count == 0 {
        html.push_str("<p class=\"muted\">No active overrides.</p>");
        return;
    }
    let _ = write!(
        html,
        "<p class=\"override-count\">{count} active override{}.</p><ul class=\"overrides\">",
        if count == 1 { "" } else { "s" }
    );
    let mut active: Vec<&Override> = stored
        .iter()
        .filter(|o| o.environment == environment.name && o.is_active(now))
        .collect();
    active.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    for item in active.iter().take(SHOWN_OVERRIDES) {
        let _ = write!(
            html,
            "<li class=\"override\"><strong>{state}</strong> until {until}</li>",
            state = item.state,
            until = escape(&for_people(item.until, zone)),
        );
    }
    if count > SHOWN_OVERRIDES {
        let _ = write!(
            html,
            "<li class=\"muted\">and {} more</li>",
            count - SHOWN_OVERRIDES
        );
    }
    html.push_str("</ul>");
}

fn render_form(
    html: &mut String,
    environments: &[EnvironmentView],
    selected: Option<&str>,
    token_field: bool,
) {
    html.push_str(
        "<section id=\"keep-up\"><h2>Keep an environment up</h2>\
         <form method=\"post\" action=\"/keep-up\"><label>Keep <select name=\"environment\">",
    );
    for environment in environments {
        let chosen = if Some(environment.name.as_str()) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<option value=\"{name}\"{chosen}>{name}</option>",
            name = escape(&environment.name)
        );
    }
    html.push_str(
        "</select></label> <label>up until <input name=\"until\" type=\"time\" required></label>\
         <label>Reason <input name=\"reason\" type=\"text\" required maxlength=\"500\" \
         placeholder=\"release rehearsal\"></label>",
    );
    if token_field {
        html.push_str(
            "<label>Token <input name=\"token\" type=\"password\" required autocomplete=\"off\"></label>",
        );
    }
    html.push_str(
        "<button type=\"submit\">Keep it up</button>\
         <p class=\"muted\">The time is the environment's local time; the next such time counts.</p>\
         </form></section>",
    );
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>curfew status</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>";

/// The page's stylesheet, served from the page's own origin (the content security policy
/// allows no inline style).
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f5f5f4;color:#1c1917}
main{max-width:42rem;margin:0 auto;padding:1rem}
h1{margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:0 0 .4rem}
section{background:#fff;border-radius:.6rem;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 2px #0002}
.state{font-size:.8rem;padding:.1rem .5rem;border-radius:1rem;vertical-align:middle}
.state.up{background:#dcfce7;color:#166534}.state.down{background:#e7e5e4;color:#44403c}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dt{color:#57534e}dd{margin:0}
.muted{color:#78716c;font-size:.9rem}.overrides{padding-left:1.2rem}
.degraded{background:#fef3c7;color:#92400e;padding:.5rem .8rem;border-radius:.5rem;margin:.5rem 0}
.notice{padding:.6rem 1rem;border-radius:.5rem}.ok{background:#dcfce7}.error{background:#fee2e2}
form{display:flex;flex-direction:column;gap:.6rem}label{display:flex;flex-direction:column;gap:.2rem}
input,select,button{font-size:1rem;padding:.5rem;border:1px solid #a8a29e;border-radius:.4rem}
button{background:#1c1917;color:#fff;border:0}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
