//! `curfew status`, `curfew override create|list|extend|cancel` and `curfew audit`: the HTTP
//! client of a running service. Tables by default, `--json` for scripts.

use std::time::Duration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::EXIT_BAD_INPUT;
use crate::api::{AuditPage, EnvironmentList, ErrorBody, OverrideList};
use crate::calendar::format::{for_people, utc_seconds};
use crate::calendar::{State, Zone};
use crate::domain::Override;
use crate::http_client::HttpClient;
use crate::overrides::resolve_until;
use crate::text;

/// How long one request to the service may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the service is and who is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The service's base URL.
    #[arg(long, env = "CURFEW_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token (prefer the environment variable: command lines are visible to others).
    #[arg(long, env = "CURFEW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `override create` asks for.
#[derive(Debug, Clone)]
pub struct CreateArgs {
    /// The environment.
    pub environment: String,
    /// The state to force.
    pub state: State,
    /// `HH:MM`, a local date and time, or RFC 3339.
    pub until: Option<String>,
    /// A duration such as `3h`.
    pub duration: Option<String>,
    /// Why.
    pub reason: String,
}

/// A failed client command: its message and exit status.
struct Failure(String, u8);

type Outcome<T> = Result<T, Failure>;

struct Client {
    http: HttpClient,
    base: String,
    token: Option<String>,
}

// === impl Client ===

impl Client {
    fn new(args: &ServerArgs) -> Self {
        Client {
            http: HttpClient::new(REQUEST_TIMEOUT),
            base: args.server.trim_end_matches('/').to_string(),
            token: args.token.clone(),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Outcome<T> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string().into_bytes());
        let response = self
            .http
            .send(method, &url, self.token.as_deref(), body)
            .await
            .map_err(|err| Failure(err.to_string(), 1))?;
        if !response.is_success() {
            let detail = serde_json::from_slice::<ErrorBody>(&response.body)
                .map(|e| format!("{} ({})", e.detail, e.error))
                .unwrap_or_else(|_| response.text());
            let code = if response.status == 422 || response.status == 400 || response.status == 404
            {
                EXIT_BAD_INPUT
            } else {
                1
            };
            return Err(Failure(
                format!("{} {}: {detail}", response.status, url),
                code,
            ));
        }
        serde_json::from_slice(&response.body)
            .map_err(|err| Failure(format!("unexpected answer from {url}: {err}"), 1))
    }

    /// The environments, for their zones; none when they cannot be read (tables then show
    /// UTC).
    async fn environments_for_zones(&self) -> EnvironmentList {
        self.call(Method::GET, "/api/v1/environments", None)
            .await
            .unwrap_or(EnvironmentList {
                at: None,
                environments: Vec::new(),
            })
    }
}

/// Runs one API call to completion, then prints its answer (exit 0) or its error.
fn run_call<T>(call: impl std::future::Future<Output = Outcome<T>>, print: impl FnOnce(T)) -> u8 {
    match block_on(call) {
        Ok(outcome) => finish(outcome, print),
        Err(code) => code,
    }
}

fn finish<T>(outcome: Outcome<T>, print: impl FnOnce(T)) -> u8 {
    match outcome {
        Ok(value) => {
            print(value);
            0
        }
        Err(Failure(message, code)) => {
            eprintln!("error: {}", text::escape(&message));
            code
        }
    }
}

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|runtime| runtime.block_on(future))
        .map_err(|err| {
            eprintln!("error: cannot start the runtime: {err}");
            1
        })
}

/// Prints `value` as JSON, with the characters that could drive a terminal escaped (still
/// valid JSON).
fn print_json(value: &impl serde::Serialize) {
    let json = serde_json::to_string_pretty(value).unwrap_or_default();
    println!("{}", text::escape_json(&json));
}

/// Runs `curfew status`.
pub fn status(args: ServerArgs) -> u8 {
    let client = Client::new(&args);
    let call = client.call::<EnvironmentList>(Method::GET, "/api/v1/environments", None);
    run_call(call, |list| {
        if args.json {
            return print_json(&list);
        }
        let rows: Vec<Vec<String>> = list
            .environments
            .iter()
            .map(|env| {
                let zone = Zone::named(&env.timezone).unwrap_or(Zone::UTC);
                vec![
                    env.name.clone(),
                    env.state.to_string(),
                    env.next_transition
                        .map(|at| for_people(at, zone))
                        .unwrap_or_else(|| "-".into()),
                    env.override_count.to_string(),
                    env.cost_per_hour
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "n/a".into()),
                    env.reason.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "ENVIRONMENT",
                "STATE",
                "NEXT CHANGE",
                "OVERRIDES",
                "$/HOUR",
                "REASON",
            ],
            &rows,
        );
        print!("{}", degraded_text(&list));
    })
}

/// What `curfew status` prints under its table about degraded environments: what is unseen,
/// since when, and why; empty when none is degraded.
pub fn degraded_text(list: &EnvironmentList) -> String {
    let mut text = String::new();
    for env in &list.environments {
        let Some(degraded) = &env.degraded else {
            continue;
        };
        let zone = Zone::named(&env.timezone).unwrap_or(Zone::UTC);
        text += &format!(
            "{} is degraded since {}: not seen, so not scaled:\n",
            env.name,
            for_people(degraded.since, zone)
        );
        for unseen in &degraded.unseen {
            text += &format!("  {}: {}\n", unseen.selection, unseen.error);
        }
    }
    text
}

/// Runs `curfew override create`.
pub fn create(args: ServerArgs, request: CreateArgs) -> u8 {
    if request.until.is_some() == request.duration.is_some() {
        eprintln!("error: give exactly one of --until and --for");
        return EXIT_BAD_INPUT;
    }
    let client = Client::new(&args);
    let call = async {
        let environments: EnvironmentList = client
            .call(Method::GET, "/api/v1/environments", None)
            .await?;
        let until = match &request.until {
            // A wall-clock time means the environment's zone and the service's clock.
            Some(text) => Some(resolve_remote_until(
                &environments,
                &request.environment,
                text,
            )?),
            None => None,
        };
        let body = serde_json::json!({
            "environment": request.environment,
            "state": request.state,
            "until": until.map(utc_seconds),
            "duration": request.duration,
            "reason": request.reason,
        });
        let created = client
            .call::<Override>(Method::POST, "/api/v1/overrides", Some(body))
            .await?;
        Ok((created, environments))
    };
    run_call(call, |(created, environments)| {
        if args.json {
            return print_json(&created);
        }
        println!(
            "created override {}: {} {} until {} ({})",
            text::escape(&created.id),
            text::escape(&created.environment),
            created.state,
            for_people(created.until, zone_of(&environments, &created.environment)),
            text::escape(&created.reason)
        );
    })
}

/// The zone of `environment` as the service names it (UTC when it is not listed).
fn zone_of(environments: &EnvironmentList, environment: &str) -> Zone {
    environments
        .environments
        .iter()
        .find(|e| e.name == environment)
        .and_then(|e| Zone::named(&e.timezone).ok())
        .unwrap_or(Zone::UTC)
}

/// Resolves `--until` in the environment's zone against the service's clock.
fn resolve_remote_until(
    environments: &EnvironmentList,
    environment: &str,
    text: &str,
) -> Outcome<DateTime<Utc>> {
    if !environments
        .environments
        .iter()
        .any(|e| e.name == environment)
    {
        return Err(Failure(
            format!("no environment '{environment}'"),
            EXIT_BAD_INPUT,
        ));
    }
    let zone = zone_of(environments, environment);
    let now = environments.at.unwrap_or_else(Utc::now);
    resolve_until(text, zone, now).map_err(|err| Failure(err, EXIT_BAD_INPUT))
}

/// Runs `curfew override list`.
pub fn list(args: ServerArgs) -> u8 {
    let client = Client::new(&args);
    let call = async {
        let list: OverrideList = client.call(Method::GET, "/api/v1/overrides", None).await?;
        Ok((list, client.environments_for_zones().await))
    };
    run_call(call, |(list, environments)| {
        if args.json {
            return print_json(&list);
        }
        if list.overrides.is_empty() {
            println!("no active overrides");
            return;
        }
        let rows: Vec<Vec<String>> = list
            .overrides
            .iter()
            .map(|o| {
                vec![
                    o.id.clone(),
                    o.environment.clone(),
                    o.state.to_string(),
                    for_people(o.until, zone_of(&environments, &o.environment)),
                    o.created_by.clone(),
                    o.reason.clone(),
                ]
            })
            .collect();
        print_table(
            &["ID", "ENVIRONMENT", "STATE", "UNTIL", "BY", "REASON"],
            &rows,
        );
    })
}

/// Runs `curfew override cancel ID`.
pub fn cancel(args: ServerArgs, id: &str) -> u8 {
    let client = Client::new(&args);
    let path = format!("/api/v1/overrides/{id}");
    let call = client.call::<Override>(Method::DELETE, &path, None);
    run_call(call, |cancelled| {
        if args.json {
            return print_json(&cancelled);
        }
        println!(
            "cancelled override {} on {}; the calendar decides again",
            text::escape(&cancelled.id),
            text::escape(&cancelled.environment)
        );
    })
}

/// Runs `curfew override extend ID --for DURATION`.
pub fn extend(args: ServerArgs, id: &str, duration: &str) -> u8 {
    let client = Client::new(&args);
    let call = async {
        let path = format!("/api/v1/overrides/{}/extend", percent_encoded(id));
        let body = serde_json::json!({ "duration": duration });
        let extended = client
            .call::<Override>(Method::POST, &path, Some(body))
            .await?;
        Ok((extended, client.environments_for_zones().await))
    };
    run_call(call, |(extended, environments)| {
        if args.json {
            return print_json(&extended);
        }
        println!(
            "extended override {}: {} {} until {}",
            text::escape(&extended.id),
            text::escape(&extended.environment),
            extended.state,
            for_people(
                extended.until,
                zone_of(&environments, &extended.environment)
            ),
        );
    })
}

/// Runs `curfew audit [--env E] [--since T] [--limit N]`.
pub fn audit(
    args: ServerArgs,
    environment: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: usize,
) -> u8 {
    let client = Client::new(&args);
    let mut path = format!("/api/v1/audit?limit={limit}");
    if let Some(environment) = environment {
        path += &format!("&environment={}", percent_encoded(environment));
    }
    if let Some(since) = since {
        path += &format!("&since={}", percent_encoded(&utc_seconds(since)));
    }
    let call = client.call::<AuditPage>(Method::GET, &path, None);
    run_call(call, |page| {
        if args.json {
            return print_json(&page);
        }
        if page.entries.is_empty() {
            println!("no audit entries");
            return;
        }
        let rows: Vec<Vec<String>> = page
            .entries
            .iter()
            .map(|e| {
                let change = match (&e.before, &e.after) {
                    (Some(before), Some(after)) => format!("{before} → {after}"),
                    (None, Some(after)) => after.to_string(),
                    (Some(before), None) => before.to_string(),
                    (None, None) => String::new(),
                };
                vec![
                    utc_seconds(e.at),
                    e.environment.to_string(),
                    e.actor.to_string(),
                    e.event.to_string(),
                    e.target.clone().unwrap_or_default(),
                    change,
                    e.reason.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "AT",
                "ENVIRONMENT",
                "ACTOR",
                "EVENT",
                "TARGET",
                "CHANGE",
                "REASON",
            ],
            &rows,
        );
        if page.total > page.entries.len() {
            println!(
                "({} of {} entries; --limit shows more)",
                page.entries.len(),
                page.total
            );
        }
    })
}

/// `text` percent-encoded for a URL query value or path segment.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded += &format!("%{byte:02X}");
        }
    }
    encoded
}

/// Prints rows under headers in columns two spaces apart; the last column is not padded.
/// Cells are escaped: text from the service cannot move the cursor or forge a row.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| text::escape(cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    cell.to_string()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  "));
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// What a running service says about one environment, for `curfew explain --server`.
pub struct ServiceView {
    /// The service's clock (`at` of `GET /api/v1/environments`).
    pub at: serde_json::Value,
    /// `GET /api/v1/environments/{name}`: the environment with its targets.
    pub environment: serde_json::Value,
}

/// Runs `curfew explain ENV` against the service: reads the environments and the
/// environment's plan, and prints what `explain` makes of them (a table, or `--json`).
pub fn explain(
    args: ServerArgs,
    environment: &str,
    make: impl FnOnce(&ServiceView, &serde_json::Value) -> Result<serde_json::Value, String>,
) -> u8 {
    let client = Client::new(&args);
    let detail_path = format!("/api/v1/environments/{}", percent_encoded(environment));
    let plan_path = format!("{detail_path}/plan");
    let call = async {
        let list = client
            .call::<serde_json::Value>(Method::GET, "/api/v1/environments", None)
            .await?;
        let detail = client
            .call::<serde_json::Value>(Method::GET, &detail_path, None)
            .await?;
        let plan = client
            .call::<serde_json::Value>(Method::GET, &plan_path, None)
            .await?;
        let view = ServiceView {
            at: list["at"].clone(),
            environment: detail,
        };
        make(&view, &plan).map_err(|message| Failure(message, EXIT_BAD_INPUT))
    };
    run_call(call, |document| {
        if args.json {
            return print_json(&document);
        }
        let zone = document["timezone"]
            .as_str()
            .and_then(|name| Zone::named(name).ok())
            .unwrap_or(Zone::UTC);
        let at = document["at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map_or_else(
                || "now".to_string(),
                |at| for_people(at.with_timezone(&Utc), zone),
            );
        print!("{}", super::explain::render(&document, &at));
    })
}
