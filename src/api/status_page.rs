//! The status page at `/`: server-rendered HTML that works without JavaScript and reads well
//! on a phone. Per environment it says up or down, why, since when and what comes next (in
//! the environment's zone), what it costs and has saved this month, its active overrides and
//! the state of each target; it links to the API, the dashboards and `/metrics`.
//!
//! The page refreshes itself every [`REFRESH_SECONDS`] with a meta refresh. It carries no
//! form, so a refresh never throws away what someone typed: "Keep it up", "Extend" and
//! "Cancel" lead to form pages of their own ([`super::status_forms`]), which do not refresh.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};

use super::AppState;
use super::auth::{Caller, MaybeAuthenticated};
use super::environments::{self, EnvironmentView, TargetView};
use crate::calendar::Zone;
use crate::calendar::format::for_people;
use crate::domain::{Override, active_override};
use crate::planner::{self, PlannedTransition};

/// How often the page reloads itself, in seconds.
pub const REFRESH_SECONDS: u32 = 30;
/// The newest active overrides the page lists per environment.
const SHOWN_OVERRIDES: usize = 5;
/// The upcoming transitions the page lists per environment.
const SHOWN_TRANSITIONS: usize = 3;
/// The targets the page lists per environment (failing ones first); the API has them all.
const SHOWN_TARGETS: usize = 50;
/// How far back the page looks for the change that started the current state.
const LOOK_BACK: Duration = Duration::days(8);
/// How far ahead the page looks for the next transitions.
const LOOK_AHEAD: Duration = Duration::days(7);

/// A confirmation or problem shown at the top of a page.
pub enum Notice {
    /// Something was done, in words.
    Done(String),
    /// Something was refused, with the reason.
    Failed(String),
}

/// Renders the page; `?created=`, `?extended=` or `?cancelled=` (an override id) confirm
/// what a form did.
pub async fn page(
    AxumState(state): AxumState<AppState>,
    MaybeAuthenticated(caller): MaybeAuthenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (list, stored) = environments::public_views(&state).await;
    let notice = ["created", "extended", "cancelled"]
        .into_iter()
        .find_map(|done| {
            let id: String = query
                .get(done)?
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(32)
                .collect();
            Some(Notice::Done(confirmation(
                done,
                &id,
                &stored,
                &list.environments,
            )))
        });
    let now = list.at.unwrap_or_else(|| state.clock.now());
    let mut html = String::with_capacity(16 * 1024);
    html.push_str(&head("curfew status", true));
    html.push_str("<main><h1>curfew</h1>");
    render_links(&mut html, &state);
    render_notice(&mut html, notice.as_ref());
    if state.status.read().at.is_some() {
        let _ = write!(
            html,
            "<p class=\"muted\">As of {} UTC; refreshes every {REFRESH_SECONDS} s.</p>",
            now.format("%Y-%m-%d %H:%M")
        );
    } else {
        html.push_str("<p class=\"muted\">Waiting for the first reconcile pass.</p>");
    }
    for environment in &list.environments {
        let page = EnvironmentPage {
            state: &state,
            environment,
            stored: &stored,
            caller: caller.as_deref(),
            now,
        };
        page.render(&mut html);
    }
    html.push_str("</main></body></html>\n");
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

/// What a form did to override `id`, in words, with its environment and end when known.
fn confirmation(
    done: &str,
    id: &str,
    stored: &[Override],
    environments: &[EnvironmentView],
) -> String {
    let what = stored
        .iter()
        .find(|o| o.id == id)
        .map(|o| {
            let zone = zone_of(environments, &o.environment);
            format!(
                ": {} {} until {}",
                o.environment,
                o.state,
                for_people(o.until, zone)
            )
        })
        .unwrap_or_default();
    format!("Override {id} {done}{what}.")
}

/// The zone of `environment` among `environments` (UTC when unknown).
pub fn zone_of(environments: &[EnvironmentView], environment: &str) -> Zone {
    environments
        .iter()
        .find(|e| e.name == environment)
        .and_then(|e| Zone::named(&e.timezone).ok())
        .unwrap_or(Zone::UTC)
}

/// Writes the notice, if any.
pub fn render_notice(html: &mut String, notice: Option<&Notice>) {
    match notice {
        Some(Notice::Done(text)) => {
            let _ = write!(
                html,
                "<p class=\"notice ok\" role=\"status\">{}</p>",
                escape(text)
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
}

/// Links to the API, the dashboards (when configured) and the metrics.
fn render_links(html: &mut String, state: &AppState) {
    html.push_str(
        "<nav class=\"links\"><a href=\"/api/v1/environments\">API</a>\
         <a href=\"/openapi.json\">OpenAPI</a>",
    );
    if let Some(url) = &state.config.server.dashboards_url {
        let _ = write!(html, "<a href=\"{}\">Dashboards</a>", escape(url));
    }
    html.push_str("<a href=\"/metrics\">Metrics</a></nav>");
    if let Some(gateway) = state.gateway {
        let wakes: Vec<&str> = state
            .config
            .environments
            .values()
            .filter(|env| env.wake.is_some())
            .map(|env| env.name.as_str())
            .collect();
        let _ = write!(
            html,
            "<p class=\"gateway\">Wake gateway: <a href=\"http://{gateway}/\">http://{gateway}/</a> \
             (a request there wakes {} while it sleeps)</p>",
            escape(&wakes.join(", "))
        );
    }
}

/// One environment's section of the page.
struct EnvironmentPage<'a> {
    state: &'a AppState,
    environment: &'a EnvironmentView,
    stored: &'a [Override],
    /// The caller, when the request was authenticated: in scope, it sees who and why.
    caller: Option<&'a Caller>,
    now: DateTime<Utc>,
}

// === impl EnvironmentPage ===

impl EnvironmentPage<'_> {
    fn render(&self, html: &mut String) {
        let environment = self.environment;
        let zone = self.zone();
        let state = environment.state.as_str();
        let (since, upcoming) = self.timeline();
        let _ = write!(
            html,
            "<section class=\"env\" id=\"env-{name}\"><h2>{name} <span class=\"state {state}\">{state}</span></h2>\
             <p class=\"why\">{reason}</p><dl>",
            name = escape(&environment.name),
            reason = escape(&environment.reason),
        );
        let since = since.map_or_else(
            || format!("before {}", for_people(self.now - LOOK_BACK, zone)),
            |at| for_people(at, zone),
        );
        let _ = write!(html, "<dt>Since</dt><dd>{}</dd>", escape(&since));
        html.push_str("<dt>Next</dt><dd>");
        if upcoming.is_empty() {
            html.push_str("nothing scheduled in the next 7 days");
        } else {
            html.push_str("<ul class=\"next\">");
            for transition in upcoming.iter().take(SHOWN_TRANSITIONS) {
                let _ = write!(
                    html,
                    "<li><strong>{direction}</strong> at {at} <span class=\"muted\">({rule})</span></li>",
                    direction = transition.direction,
                    at = escape(&for_people(transition.at, zone)),
                    rule = escape(&transition.rule),
                );
            }
            html.push_str("</ul>");
        }
        html.push_str("</dd>");
        let dollars =
            |amount: Option<f64>| amount.map_or_else(|| "n/a".to_string(), |a| format!("${a:.2}"));
        let _ = write!(
            html,
            "<dt>Cost per hour</dt><dd class=\"cost\">{}</dd>\
             <dt>Saved this month</dt><dd class=\"saved\">{}</dd></dl>",
            dollars(environment.cost_per_hour),
            dollars(environment.month_to_date_savings),
        );
        self.render_degraded(html, zone);
        self.render_overrides(html, zone);
        self.render_targets(html);
        let _ = write!(
            html,
            "<p class=\"actions\"><a class=\"button\" href=\"/keep-up?environment={name}\">Keep it up</a> \
             <a href=\"/api/v1/environments/{name}\">JSON</a> \
             <a href=\"/api/v1/environments/{name}/plan\">Plan</a></p></section>",
            name = escape(&environment.name),
        );
    }

    fn zone(&self) -> Zone {
        Zone::named(&self.environment.timezone).unwrap_or(Zone::UTC)
    }

    /// Whether the caller's token (or identity) covers the environment.
    fn visible(&self) -> bool {
        self.caller
            .is_some_and(|c| c.in_scope(&self.environment.name))
    }

    /// When the current state began (within [`LOOK_BACK`]) and the transitions to come
    /// (within [`LOOK_AHEAD`]), overrides applied.
    fn timeline(&self) -> (Option<DateTime<Utc>>, Vec<PlannedTransition>) {
        let config = &self.state.config;
        let Some(environment) = config.environments.get(&self.environment.name) else {
            return (None, Vec::new());
        };
        let (from, to) = (self.now - LOOK_BACK, self.now + LOOK_AHEAD);
        let calendar = config.plan_environment(environment, from, to);
        let plan = planner::with_overrides(calendar, self.stored, from, to, self.zone());
        let (past, upcoming): (Vec<_>, Vec<_>) =
            plan.transitions.into_iter().partition(|t| t.at <= self.now);
        (past.last().map(|t| t.at), upcoming)
    }

    fn render_degraded(&self, html: &mut String, zone: Zone) {
        let Some(degraded) = &self.environment.degraded else {
            return;
        };
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

    /// The active overrides, newest first: the one in force, and older ones it supersedes
    /// marked as such. Who and why show for a caller in scope.
    fn render_overrides(&self, html: &mut String, zone: Zone) {
        let name = &self.environment.name;
        let mut active: Vec<&Override> = self
            .stored
            .iter()
            .filter(|o| &o.environment == name && o.is_active(self.now))
            .collect();
        if active.is_empty() {
            html.push_str("<p class=\"muted\">No active overrides.</p>");
            return;
        }
        active.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let in_force = active_override(self.stored, name, self.now).map(|o| o.id.as_str());
        let count = active.len();
        let _ = write!(
            html,
            "<h3>Overrides</h3><p class=\"override-count\">{count} active override{}.</p><ul class=\"overrides\">",
            if count == 1 { "" } else { "s" }
        );
        for item in active.iter().take(SHOWN_OVERRIDES) {
            let forced = in_force == Some(item.id.as_str());
            let _ = write!(
                html,
                "<li class=\"override{class}\"><strong>{state}</strong> until {until}{status}",
                class = if forced { " in-force" } else { " superseded" },
                state = item.state,
                until = escape(&for_people(item.until, zone)),
                status = if forced {
                    " <span class=\"tag\">in force</span>"
                } else {
                    " <span class=\"tag\">superseded by a newer override</span>"
                },
            );
            if self.visible() {
                let _ = write!(
                    html,
                    "<br><span class=\"who\">by {by}: {reason}</span>",
                    by = escape(&item.created_by),
                    reason = escape(&item.reason),
                );
            }
            let _ = write!(
                html,
                " <span class=\"buttons\"><a class=\"button\" href=\"/overrides/{id}#extend\">Extend</a>\
                 <a class=\"button danger\" href=\"/overrides/{id}#cancel\">Cancel</a></span></li>",
                id = escape(&item.id),
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

    /// The targets as the latest pass saw them: desired and actual state, failing ones
    /// first with their error, manual scale-ups marked.
    fn render_targets(&self, html: &mut String) {
        let targets: Vec<TargetView> = environments::target_views(
            &self.state.status.read(),
            &self.environment.name,
            self.visible(),
        );
        if targets.is_empty() {
            return;
        }
        let failing = targets.iter().filter(|t| t.error.is_some()).count();
        let _ = write!(
            html,
            "<h3>Targets</h3><p class=\"muted\">{} target{}, {} failing.</p>\
             <table class=\"targets\"><thead><tr><th>Target</th><th>Desired</th><th>Actual</th><th>Notes</th></tr></thead><tbody>",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            failing,
        );
        for target in targets.iter().take(SHOWN_TARGETS) {
            let note = match (&target.error, &target.left_alone) {
                (Some(error), _) => {
                    format!("<span class=\"failing\">failing: {}</span>", escape(error))
                }
                (None, Some(_)) if target.manual_scale_up => {
                    "<span class=\"manual\">scaled up by hand</span>".to_string()
                }
                (None, Some(reason)) => escape(reason),
                (None, None) if target.desired != target.actual => "converging".to_string(),
                (None, None) => String::new(),
            };
            let _ = write!(
                html,
                "<tr><td>{id}</td><td>{desired}</td><td>{actual} <span class=\"muted\">({capacity})</span></td><td>{note}</td></tr>",
                id = escape(&target.target),
                desired = target.desired,
                actual = target.actual,
                capacity = escape(&target.capacity),
            );
        }
        html.push_str("</tbody></table>");
        if targets.len() > SHOWN_TARGETS {
            let _ = write!(
                html,
                "<p class=\"muted\">and {} more in the <a href=\"/api/v1/environments/{}\">API</a>.</p>",
                targets.len() - SHOWN_TARGETS,
                escape(&self.environment.name),
            );
        }
    }
}

/// The start of a page up to `<body>`; `refresh` adds the meta refresh.
pub fn head(title: &str, refresh: bool) -> String {
    let refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">")
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{}</title><link rel=\"stylesheet\" href=\"/status.css\"></head><body>",
        escape(title)
    )
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
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
button,.button{background:#1c1917;color:#fff;border:0;text-decoration:none;display:inline-block}
.button{padding:.35rem .7rem;border-radius:.4rem;font-size:.9rem;margin:.2rem .3rem .2rem 0}
.danger{background:#b91c1c}.links a{margin-right:1rem}.tag{font-size:.75rem;color:#57534e}
.superseded{color:#78716c}.who{font-size:.9rem;color:#44403c}.next{margin:0;padding-left:1.1rem}
h3{font-size:1rem;margin:.8rem 0 .3rem}.failing{color:#b91c1c}.manual{color:#92400e}
.targets{border-collapse:collapse;width:100%;font-size:.9rem;display:block;overflow-x:auto}
.targets th,.targets td{text-align:left;padding:.25rem .5rem .25rem 0;border-bottom:1px solid #e7e5e4;vertical-align:top}
.targets td:first-child{word-break:break-all}
@media (max-width:30rem){main{padding:.5rem}section{padding:.7rem}dl{grid-template-columns:1fr}dt{font-weight:600}}
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
