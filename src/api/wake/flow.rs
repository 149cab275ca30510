//! The wake flow: what someone at a sleeping environment's door gets.
//!
//! Browsers get pages: "asleep, wake it for 2 h" (a form using the page's authentication:
//! the trusted proxy's identity or a token), then the progress by tier, refreshed every few
//! seconds, then a redirect back to the URL they asked for. API clients get 503 with
//! `Retry-After` and a JSON body. A wake is an ordinary override for `wake.keep_up_for`,
//! audited under the actor `wake:<person or client address>`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Form;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::{Gateway, Phase, client_of, request_host};
use crate::api::ApiError;
use crate::api::auth::{self, Caller, Role};
use crate::api::overrides::{CreateOverride, create_override};
use crate::api::status_forms::{form_caller, token_field};
use crate::api::status_page::escape;
use crate::calendar::State;
use crate::calendar::format::for_people;
use crate::config::{Environment, duration};
use crate::telemetry;

/// The path a Traefik errors middleware asks for, with the original URL as `url`.
const TRAEFIK_ERROR_PATH: &str = "/.curfew/error";
/// How often the waking page reloads itself, in seconds.
const WAKING_REFRESH_SECONDS: u64 = 3;
/// What API clients are told to wait while an environment wakes.
const WAKING_RETRY_AFTER: StdDuration = StdDuration::from_secs(10);
/// The most an API client is told to wait for an environment that is asleep.
const MAX_RETRY_AFTER: StdDuration = StdDuration::from_secs(3600);
/// How far back the start of a sleep is looked for.
const SINCE_LOOKBACK: Duration = Duration::days(14);

/// The JSON body of a 503 from the gateway.
#[derive(Debug, Serialize)]
struct Unavailable<'a> {
    /// `asleep` or `waking`.
    error: &'static str,
    /// The environment.
    environment: &'a str,
    /// What is going on, for people.
    detail: String,
}

/// The wake form.
#[derive(Debug, Deserialize)]
pub struct WakeForm {
    /// The caller's API token; empty when a trusted proxy names the person.
    #[serde(default)]
    token: String,
    /// Where to go once awake.
    #[serde(default)]
    return_to: String,
}

/// The answer to a request while `environment` is not ready: a wake when the request may
/// cause one, then a page or a 503.
pub(super) async fn answer(
    gateway: &Gateway,
    environment: &Environment,
    phase: Phase,
    request: Request,
    ignored: Option<String>,
) -> Response {
    let return_to = return_to_of(&request);
    let browser = is_browser(request.headers());
    let Phase::Asleep { .. } = &phase else {
        return waiting(environment, &phase, &return_to, browser);
    };
    let name = environment.name.clone();
    let auto = environment.wake.as_ref().is_some_and(|w| w.auto);
    if let Some(why) = ignored {
        unwoken(&name, "ignored");
        return unavailable(
            environment,
            "asleep",
            format!("{name} is asleep; {why}"),
            None,
        );
    }
    if !auto {
        unwoken(&name, "not_asked");
        let client = auth::client_address(request.extensions());
        // The person a trusted proxy names acts without typing a token.
        let identity = auth::proxy_caller(&gateway.app, request.headers(), client)
            .ok()
            .flatten();
        return asleep(
            gateway,
            environment,
            &phase,
            identity.as_deref(),
            &return_to,
            browser,
        );
    }
    let client = client_of(&request);
    if let Err(wait) = gateway.wakes.take(&client) {
        unwoken(&name, "rate_limited");
        return ApiError::too_many_requests(
            format!("{client} has woken environments too often; try again later"),
            wait,
        )
        .into_response();
    }
    let caller = Caller {
        name: format!("wake:{client}"),
        role: Role::Operator,
        environments: vec![name.clone()],
    };
    let host = request_host(request.headers()).unwrap_or_default();
    match wake(
        gateway,
        environment,
        caller,
        "auto",
        &format!("{host}{return_to}"),
    )
    .await
    {
        Ok(()) => waiting(environment, &Phase::Waking(Vec::new()), &return_to, browser),
        Err(err) => {
            unwoken(&name, "refused");
            err.into_response()
        }
    }
}

/// Wakes `environment` for its `keep_up_for` as `caller` (unless an override already keeps
/// it up): the override is stored, audited and the reconciler woken.
async fn wake(
    gateway: &Gateway,
    environment: &Environment,
    caller: Caller,
    how: &'static str,
    what: &str,
) -> Result<(), ApiError> {
    let Some(settings) = &environment.wake else {
        return Err(ApiError::not_found("no wake settings"));
    };
    let _one_at_a_time = gateway.waking.lock().await;
    let now = gateway.app.clock.now();
    let existing = gateway
        .app
        .overrides
        .list()
        .await
        .map_err(|err| ApiError::internal(err.to_string()))?;
    let kept_up = existing
        .iter()
        .any(|o| o.environment == environment.name && o.state == State::Up && o.is_active(now));
    if !kept_up {
        let what: String = what.chars().take(200).collect();
        let request = CreateOverride {
            environment: environment.name.clone(),
            state: State::Up,
            until: None,
            duration: Some(duration::format(settings.keep_up_for)),
            reason: format!("woken on request to {what}"),
        };
        // Noted before the override exists: the pass it triggers may end before this call
        // returns, and that pass is the one that sees the environment ready.
        let already_waking = gateway.activity.waking(&environment.name);
        gateway.activity.woke(&environment.name, now);
        let created = match create_override(&gateway.app, &Arc::new(caller), request).await {
            Ok(created) => created,
            Err(err) => {
                if !already_waking {
                    gateway.activity.take_wake(&environment.name);
                }
                return Err(err);
            }
        };
        metrics::counter!(telemetry::WAKES, "environment" => environment.name.clone(), "how" => how)
            .increment(1);
        tracing::info!(environment = %environment.name, by = %created.created_by, until = %created.until, "woken on request");
    }
    Ok(())
}

/// `POST /.curfew/wake`: wakes the environment of the request's host as the person the
/// trusted proxy names, or the holder of the typed token; then back to the URL asked for,
/// which shows the progress until the environment is ready.
pub async fn wake_form(
    AxumState(gateway): AxumState<Gateway>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<WakeForm>,
) -> Response {
    let Some(environment) = gateway.environment_of(&headers).cloned() else {
        return ApiError::not_found("no environment wakes for this host").into_response();
    };
    let client = auth::client_address(&extensions);
    let identity = match auth::proxy_caller(&gateway.app, &headers, client) {
        Ok(identity) => identity,
        Err(err) => return error_page(&err),
    };
    let caller = match form_caller(&gateway.app, identity, &form.token, (&headers, &extensions)) {
        Ok(caller) => caller,
        Err(err) => return error_page(&err),
    };
    let acting = Caller {
        name: format!("wake:{}", caller.name),
        ..(*caller).clone()
    };
    let return_to = safe_return(&form.return_to);
    let host = request_host(&headers).unwrap_or_default();
    match wake(
        &gateway,
        &environment,
        acting,
        "asked",
        &format!("{host}{return_to}"),
    )
    .await
    {
        Ok(()) => Redirect::to(&return_to).into_response(),
        Err(err) => error_page(&err),
    }
}

/// The answer while `environment` wakes: the progress page for browsers, 503 otherwise.
pub(super) fn waiting(
    environment: &Environment,
    phase: &Phase,
    return_to: &str,
    browser: bool,
) -> Response {
    let name = &environment.name;
    let progress: Vec<String> = match phase {
        Phase::Waking(tiers) => tiers
            .iter()
            .map(|(tier, up, all)| format!("{}: {up} of {all} up", tier_name(*tier)))
            .collect(),
        _ => Vec::new(),
    };
    let detail = if progress.is_empty() {
        format!("{name} is waking up")
    } else {
        format!("{name} is waking up ({})", progress.join(", "))
    };
    if !browser {
        return unavailable(environment, "waking", detail, Some(WAKING_RETRY_AFTER));
    }
    let mut body = format!("<h1>{} is waking up</h1>", escape(name));
    body.push_str("<ul>");
    if progress.is_empty() {
        body.push_str("<li>starting…</li>");
    }
    for line in &progress {
        body.push_str(&format!("<li>{}</li>", escape(line)));
    }
    body.push_str(&format!(
        "</ul><p>This page reloads every {WAKING_REFRESH_SECONDS} s and shows \
         <code>{}</code> once {} is ready.</p>",
        escape(return_to),
        escape(name)
    ));
    let refresh = format!("{WAKING_REFRESH_SECONDS}; url={return_to}");
    html_503(
        page(&format!("{name} is waking up"), Some(&refresh), &body),
        WAKING_RETRY_AFTER,
    )
}

/// The answer while `environment` sleeps and waking needs asking: a page with the wake
/// form for browsers, 503 otherwise.
fn asleep(
    gateway: &Gateway,
    environment: &Environment,
    phase: &Phase,
    identity: Option<&Caller>,
    return_to: &str,
    browser: bool,
) -> Response {
    let name = &environment.name;
    let Phase::Asleep {
        reason,
        next_change,
        idle_since,
    } = phase
    else {
        return waiting(environment, phase, return_to, browser);
    };
    let schedule = gateway.app.config.schedule_of(environment);
    let zone = schedule.zone();
    let now = gateway.app.clock.now();
    let since = idle_since.or_else(|| {
        schedule
            .transitions(now - SINCE_LOOKBACK, now)
            .last()
            .map(|t| t.at)
    });
    let mut facts = Vec::new();
    if let Some(since) = since {
        facts.push(format!("since {}", for_people(since, zone)));
    }
    if let Some(next) = next_change {
        facts.push(format!("next scheduled wake {}", for_people(*next, zone)));
    }
    let keep = environment
        .wake
        .as_ref()
        .map_or_else(String::new, |w| duration::format(w.keep_up_for));
    let summary = if facts.is_empty() {
        format!("{name} is asleep")
    } else {
        format!("{name} is asleep ({})", facts.join(", "))
    };
    let body = format!(
        "<h1>{}</h1><p class=\"muted\">{}</p>\
         <form method=\"post\" action=\"/.curfew/wake\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\">{}\
         <button type=\"submit\">Wake it for {}</button></form>",
        escape(&summary),
        escape(reason),
        escape(return_to),
        token_field(identity),
        escape(&keep)
    );
    let retry = next_change
        .and_then(|next| (next - now).to_std().ok())
        .map_or(MAX_RETRY_AFTER, |wait| {
            wait.clamp(WAKING_RETRY_AFTER, MAX_RETRY_AFTER)
        });
    if !browser {
        let detail = format!("{summary}; POST /.curfew/wake with a token to wake it for {keep}");
        return unavailable(environment, "asleep", detail, Some(retry));
    }
    html_503(page(&summary, None, &body), retry)
}

/// A page with 503 and `Retry-After`: the environment is not there yet.
fn html_503(html: String, retry_after: StdDuration) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::RETRY_AFTER,
                crate::api::error::retry_after_value(retry_after),
            ),
        ],
        Html(html),
    )
        .into_response()
}

/// 503 with a JSON body and, when known, `Retry-After`.
fn unavailable(
    environment: &Environment,
    error: &'static str,
    detail: String,
    retry_after: Option<StdDuration>,
) -> Response {
    let body = Unavailable {
        error,
        environment: &environment.name,
        detail,
    };
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response();
    if let Some(wait) = retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            crate::api::error::retry_after_value(wait),
        );
    }
    response
}

/// An error as a small page.
fn error_page(err: &ApiError) -> Response {
    let body = format!(
        "<h1>Not woken</h1><p>{}</p><p><a href=\"javascript:history.back()\">back</a></p>",
        escape(&err.detail)
    );
    (err.status, Html(page("Not woken", None, &body))).into_response()
}

/// A whole page of the gateway: its own small style, an optional meta refresh.
fn page(title: &str, refresh: Option<&str>, body: &str) -> String {
    let refresh = refresh.map_or_else(String::new, |content| {
        format!(
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            escape(content)
        )
    });
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{}</title><style>body{{font-family:system-ui,sans-serif;max-width:40rem;\
         margin:3rem auto;padding:0 1rem;line-height:1.5}}.muted{{color:#555}}\
         button{{font-size:1.1rem;padding:.5rem 1rem}}</style></head><body><main>{body}\
         </main></body></html>\n",
        escape(title)
    )
}

/// The local URL the request asked for, where the redirect after a wake may go.
pub(super) fn return_to_of(request: &Request) -> String {
    safe_return(&original_uri(request))
}

/// The path and query the person asked for: in error-backend mode the ingress-nginx header
/// `X-Original-URI`, or the `url` parameter of a Traefik errors middleware whose query is
/// `/.curfew/error?url={url}`; else the request's own.
pub(super) fn original_uri(request: &Request) -> String {
    if let Some(original) = request
        .headers()
        .get("x-original-uri")
        .and_then(|v| v.to_str().ok())
    {
        return original.to_string();
    }
    let uri = request.uri();
    if uri.path() == TRAEFIK_ERROR_PATH
        && let Some(url) = uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("url="))
    {
        let decoded = percent_decode(url);
        // `{url}` is the whole URL: keep its path and query.
        return match decoded.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map_or("/".to_string(), |at| rest[at..].to_string()),
            None => decoded,
        };
    }
    uri.path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string()
}

/// `text` with `%XX` escapes (and `+`) decoded; invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[at] {
            b'%' if at + 2 < bytes.len() => match (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    at += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` when it is a local path (so the redirect cannot leave the site), else `/`.
fn safe_return(path: &str) -> String {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.starts_with("/.curfew/")
        && path.len() <= 2048
        && path.chars().all(|c| c.is_ascii_graphic());
    if local {
        path.to_string()
    } else {
        "/".to_string()
    }
}

/// Whether a request comes from a browser: it accepts HTML.
pub(super) fn is_browser(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn unwoken(environment: &str, why: &'static str) {
    metrics::counter!(telemetry::WAKE_REQUESTS_UNWOKEN, "environment" => environment.to_string(), "why" => why)
        .increment(1);
}

fn tier_name(tier: crate::domain::Tier) -> &'static str {
    match tier {
        crate::domain::Tier::Databases => "databases",
        crate::domain::Tier::Nodes => "nodes",
        crate::domain::Tier::Stateful => "stateful sets",
        crate::domain::Tier::Workloads => "workloads",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_return("/cart?id=7"), "/cart?id=7");
        assert_eq!(safe_return("https://evil.example/"), "/");
        assert_eq!(safe_return("//evil.example/"), "/");
        assert_eq!(safe_return("/\\evil.example"), "/");
        assert_eq!(safe_return("/.curfew/wake"), "/");
    }

    #[test]
    fn the_original_uri_comes_from_ingress_nginx_or_traefik_else_the_request() {
        let request = |uri: &str, original: Option<&str>| {
            let mut builder = Request::builder().uri(uri);
            if let Some(original) = original {
                builder = builder.header("x-original-uri", original);
            }
            builder.body(axum::body::Body::empty()).expect("a request")
        };
        assert_eq!(original_uri(&request("/cart?id=7", None)), "/cart?id=7");
        assert_eq!(
            original_uri(&request("/", Some("/orders/42"))),
            "/orders/42"
        );
        let traefik = "/.curfew/error?url=http%3A%2F%2Fshop.example%2Fcart%3Fid%3D7";
        assert_eq!(original_uri(&request(traefik, None)), "/cart?id=7");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
