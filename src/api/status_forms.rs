//! The status page's forms, each on a page of its own that does not refresh: "keep
//! `<environment>` up until `<time>`" at `/keep-up`, and "extend" or "cancel" an override at
//! `/overrides/{id}`.
//!
//! A form acts with the same authorisation as the API: the token typed into it, or, without
//! one, the identity the request itself carries (what [`MaybeAuthenticated`] finds). A browser
//! sends that identity (a single sign-on proxy's cookie) with any site's form too, so a form
//! acting on it must come from curfew's own pages: a cross-site request is refused. It then
//! redirects (303) to the status page, which confirms what was done, or shows the form again
//! with the problem.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{self, Caller, MaybeAuthenticated};
use super::environments::{self, EnvironmentView};
use super::overrides::{
    CreateOverride, cancel_override, check_text, create_override, extend_override,
};
use super::status_page::{Notice, escape, head, render_notice, zone_of};
use super::{ApiError, AppState};
use crate::calendar::State;
use crate::calendar::format::{for_people, utc_seconds};
use crate::domain::Override;
use crate::overrides::resolve_until;

/// The lengths the page offers for extending an override.
const EXTENSIONS: [&str; 4] = ["30m", "1h", "2h", "4h"];

/// The keep-up form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct KeepUpForm {
    /// The environment.
    pub environment: String,
    /// `HH:MM` (the next such time in the environment's zone) or a local date and time.
    pub until: String,
    /// Why.
    pub reason: String,
    /// The caller's API token; empty when the request carries an identity.
    #[serde(default)]
    pub token: String,
}

/// The extend form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct ExtendForm {
    /// How much longer, e.g. `2h`.
    pub duration: String,
    /// The caller's API token; empty when the request carries an identity.
    #[serde(default)]
    pub token: String,
}

/// The cancel form's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct CancelForm {
    /// The caller's API token; empty when the request carries an identity.
    #[serde(default)]
    pub token: String,
}

/// The keep-up page's query.
#[derive(Debug, Clone, Deserialize)]
pub struct KeepUpQuery {
    /// The environment to preselect.
    pub environment: Option<String>,
}

/// Who acts through a form: the typed token when there is one, else the request's own
/// identity, unless the form was sent from another site (403); 401 without either (429 when
/// rate limited), as the API answers.
pub(super) fn form_caller(
    state: &AppState,
    identity: Option<Arc<Caller>>,
    token: &str,
    request: (&HeaderMap, &Extensions),
) -> Result<Arc<Caller>, ApiError> {
    let (headers, extensions) = request;
    match identity {
        Some(caller) if token.trim().is_empty() => {
            if is_cross_site(headers) {
                return Err(ApiError::forbidden(
                    "this form was sent from another site; use the form on curfew's own page",
                ));
            }
            Ok(caller)
        }
        _ => auth::authorize(state, Some(token), auth::client_address(extensions)),
    }
}

/// Whether the browser says the form came from another site: `Sec-Fetch-Site` other than
/// `same-origin` or `none`, or, from browsers without it, an `Origin` whose host and port
/// are not the request's `Host`.
fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A form page: no refresh, the notice, then `body`.
fn form_page(status: StatusCode, title: &str, notice: Option<&Notice>, body: &str) -> Response {
    let mut html = head(title, false);
    html.push_str("<main><p><a href=\"/\">← status</a></p>");
    render_notice(&mut html, notice);
    html.push_str(body);
    html.push_str("</main></body></html>\n");
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The token field: required unless the request already carries an identity.
pub(super) fn token_field(identity: Option<&Caller>) -> String {
    match identity {
        Some(caller) => format!(
            "<p class=\"muted\">Acting as {}.</p><input name=\"token\" type=\"hidden\" value=\"\">",
            escape(&caller.name)
        ),
        None => "<label>Token <input name=\"token\" type=\"password\" required autocomplete=\"off\"></label>"
            .to_string(),
    }
}

/// `GET /keep-up`: the form "keep an environment up until".
pub async fn keep_up_page(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(identity): MaybeAuthenticated,
    Query(query): Query<KeepUpQuery>,
) -> Response {
    let (list, _) = environments::public_views(&state).await;
    keep_up_form(
        StatusCode::OK,
        &list.environments,
        query.environment.as_deref(),
        identity.as_deref(),
        None,
    )
}

fn keep_up_form(
    status: StatusCode,
    environments: &[EnvironmentView],
    selected: Option<&str>,
    identity: Option<&Caller>,
    notice: Option<&Notice>,
) -> Response {
    let mut body = String::from(
        "<section id=\"keep-up\"><h2>Keep an environment up</h2>\
         <form method=\"post\" action=\"/keep-up\"><label>Keep <select name=\"environment\">",
    );
    for environment in environments {
        let chosen = if Some(environment.name.as_str()) == selected {
            " selected"
        } else {
            ""
        };
        body.push_str(&format!(
            "<option value=\"{name}\"{chosen}>{name}</option>",
            name = escape(&environment.name)
        ));
    }
    body.push_str(
        "</select></label> <label>up until <input name=\"until\" type=\"time\" required></label>\
         <label>Reason <input name=\"reason\" type=\"text\" required maxlength=\"500\" \
         placeholder=\"release rehearsal\"></label>",
    );
    body.push_str(&token_field(identity));
    body.push_str(
        "<button type=\"submit\">Keep it up</button>\
         <p class=\"muted\">The time is the environment's local time; the next such time counts.</p>\
         </form></section>",
    );
    form_page(status, "curfew: keep it up", notice, &body)
}

/// `POST /keep-up`: creates the override, then redirects to the page (303), or shows the
/// form again with the problem.
pub async fn keep_up(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(identity): MaybeAuthenticated,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<KeepUpForm>,
) -> Response {
    let created = async {
        let caller = form_caller(
            &state,
            identity.clone(),
            &form.token,
            (&headers, &extensions),
        )?;
        check_text("until", &form.until)?;
        let zone = state
            .config
            .environments
            .get(&form.environment)
            .map_or(crate::calendar::Zone::UTC, |env| {
                state.config.schedule_of(env).zone()
            });
        let until =
            resolve_until(&form.until, zone, state.clock.now()).map_err(ApiError::unprocessable)?;
        let request = CreateOverride {
            environment: form.environment.clone(),
            state: State::Up,
            until: Some(utc_seconds(until)),
            duration: None,
            reason: form.reason.clone(),
        };
        create_override(&state, &caller, request).await
    }
    .await;
    match created {
        Ok(created) => Redirect::to(&format!("/?created={}", created.id)).into_response(),
        Err(err) => {
            let (list, _) = environments::public_views(&state).await;
            let page = keep_up_form(
                err.status,
                &list.environments,
                Some(form.environment.as_str()),
                identity.as_deref(),
                Some(&Notice::Failed(err.detail.clone())),
            );
            with_retry_after(page, &err)
        }
    }
}

/// `GET /overrides/{id}`: the override with its Extend and Cancel forms.
pub async fn override_page(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(identity): MaybeAuthenticated,
    Path(id): Path<String>,
) -> Response {
    override_form(&state, &id, identity.as_deref(), StatusCode::OK, None).await
}

async fn override_form(
    state: &AppState,
    id: &str,
    identity: Option<&Caller>,
    status: StatusCode,
    notice: Option<&Notice>,
) -> Response {
    let (list, stored) = environments::public_views(state).await;
    let now = list.at.unwrap_or_else(|| state.clock.now());
    let Some(item) = stored.iter().find(|o| o.id == id && o.until > now) else {
        let missing = Notice::Failed(format!("no active override '{id}'"));
        return form_page(
            StatusCode::NOT_FOUND,
            "curfew: override",
            Some(notice.unwrap_or(&missing)),
            "",
        );
    };
    let body = override_forms(item, &list.environments, identity);
    form_page(status, "curfew: override", notice, &body)
}

fn override_forms(
    item: &Override,
    environments: &[EnvironmentView],
    identity: Option<&Caller>,
) -> String {
    let zone = zone_of(environments, &item.environment);
    let id = escape(&item.id);
    let mut body = format!(
        "<section><h2>Override of {environment}</h2><p><strong>{state}</strong> until {until}</p>",
        environment = escape(&item.environment),
        state = item.state,
        until = escape(&for_people(item.until, zone)),
    );
    if identity.is_some_and(|c| c.in_scope(&item.environment)) {
        body.push_str(&format!(
            "<p class=\"who\">by {}: {}</p>",
            escape(&item.created_by),
            escape(&item.reason)
        ));
    }
    body.push_str(&format!(
        "</section><section id=\"extend\"><h2>Extend</h2>\
         <form method=\"post\" action=\"/overrides/{id}/extend\"><label>by <select name=\"duration\">"
    ));
    for length in EXTENSIONS {
        let chosen = if length == "1h" { " selected" } else { "" };
        body.push_str(&format!(
            "<option value=\"{length}\"{chosen}>{length}</option>"
        ));
    }
    body.push_str("</select></label>");
    body.push_str(&token_field(identity));
    body.push_str(&format!(
        "<button type=\"submit\">Extend</button></form></section>\
         <section id=\"cancel\"><h2>Cancel</h2><p class=\"muted\">The calendar decides again at once.</p>\
         <form method=\"post\" action=\"/overrides/{id}/cancel\">"
    ));
    body.push_str(&token_field(identity));
    body.push_str(
        "<button type=\"submit\" class=\"danger\">Cancel the override</button></form></section>",
    );
    body
}

/// `POST /overrides/{id}/extend`.
pub async fn extend(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(identity): MaybeAuthenticated,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<ExtendForm>,
) -> Response {
    let form_request = FormRequest {
        identity,
        token: &form.token,
        headers: &headers,
        extensions: &extensions,
    };
    let (state, id, duration) = (&state, id.as_str(), form.duration.as_str());
    let act = |caller: Arc<Caller>| async move {
        extend_override(state, &caller, id, duration)
            .await
            .map(|_| ())
    };
    act_on_override(state, id, form_request, "extended", act).await
}

/// `POST /overrides/{id}/cancel`.
pub async fn cancel(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(identity): MaybeAuthenticated,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let form_request = FormRequest {
        identity,
        token: &form.token,
        headers: &headers,
        extensions: &extensions,
    };
    let (state, id) = (&state, id.as_str());
    let act =
        |caller: Arc<Caller>| async move { cancel_override(state, &caller, id).await.map(|_| ()) };
    act_on_override(state, id, form_request, "cancelled", act).await
}

/// What a form's request says about who sends it.
struct FormRequest<'a> {
    identity: Option<Arc<Caller>>,
    token: &'a str,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

/// Acts on override `id` as the form's caller with `act`, then confirms `done` or shows the
/// override's forms again with the problem.
async fn act_on_override<F, Fut>(
    state: &AppState,
    id: &str,
    request: FormRequest<'_>,
    done: &str,
    act: F,
) -> Response
where
    F: FnOnce(Arc<Caller>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let caller = form_caller(
        state,
        request.identity.clone(),
        request.token,
        (request.headers, request.extensions),
    );
    let result = match caller {
        Ok(caller) => act(caller).await,
        Err(err) => Err(err),
    };
    done_or_form(state, id, request.identity.as_deref(), done, result).await
}

/// Redirects to the status page confirming `done`, or shows the override's forms again with
/// the problem.
async fn done_or_form(
    state: &AppState,
    id: &str,
    identity: Option<&Caller>,
    done: &str,
    result: Result<(), ApiError>,
) -> Response {
    match result {
        Ok(()) => {
            let id: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
            Redirect::to(&format!("/?{done}={id}")).into_response()
        }
        Err(err) => {
            let notice = Notice::Failed(err.detail.clone());
            let page = override_form(state, id, identity, err.status, Some(&notice)).await;
            with_retry_after(page, &err)
        }
    }
}

/// `page` with the `Retry-After` of `err`, if it has one.
fn with_retry_after(mut page: Response, err: &ApiError) -> Response {
    if let Some((name, value)) = err.retry_after_header() {
        page.headers_mut().insert(name, value);
    }
    page
}
