//! Turning the raw file into a [`Config`], collecting every problem with its location.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};
use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::auth;
use super::lint::{Severity, Warning};
use super::raw::{
    Located, RawCalendar, RawConfig, RawCost, RawEnvironment, RawKubernetes, RawReconciler,
    RawSchedule, RawServer, RawState,
};
use super::sections::{
    DEFAULT_CONCURRENCY, DEFAULT_EVENT_QPS, DEFAULT_EVENT_QUEUE, DEFAULT_KUBERNETES_CONCURRENCY,
    DEFAULT_MAX_CONNECTIONS, MAX_CONCURRENCY, MAX_EVENT_QUEUE, MAX_KUBERNETES_CONCURRENCY,
    WriteRate,
};
use super::{
    Config, Diagnostic, Environment, KubernetesConfig, ReconcilerConfig, ServerConfig, StateConfig,
    TargetConfig, closest, duration, targets::left_out,
};
use crate::calendar::cron::CronExpr;
use crate::calendar::holidays::HolidaySet;
use crate::calendar::spec::{self, AbsoluteRange, Spec};
use crate::calendar::{Base, Exception, Schedule, State, Zone, zone};
use crate::cost::{Catalog, CostModel, CostSettings};

/// Collects diagnostics for one file.
pub(super) struct Collector {
    file: PathBuf,
    base_dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

// === impl Collector ===

impl Collector {
    /// How many problems have been reported so far.
    pub(super) fn error_count(&self) -> usize {
        self.diagnostics.len()
    }

    pub(super) fn error(&mut self, at: Location, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
            hint,
        });
    }

    /// Resolves a path written in the file against the file's folder.
    fn resolve_path(&self, written: &str) -> PathBuf {
        let path = Path::new(written);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn zone(&mut self, name: &Located) -> Option<Zone> {
        match Zone::named(name.value.trim()) {
            Ok(zone) => Some(zone),
            Err(err) => {
                self.error(name.referenced, err.to_string(), zone_hint(&err));
                None
            }
        }
    }

    /// The duration written at `value` for `key`, or `None` after reporting why it is not one.
    pub(super) fn duration(&mut self, value: &Located, key: &str) -> Option<chrono::Duration> {
        match duration::parse(&value.value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.error(
                    value.referenced,
                    format!("{key}: {err}"),
                    Some("e.g. 45s, 90m, 12h, 1h30m, 2d".into()),
                );
                None
            }
        }
    }

    /// Stores in each slot the duration written for its key, converted by `convert`, leaving
    /// the slot's default when none is written; reports each value that is not a duration.
    fn durations<T, const N: usize>(
        &mut self,
        fields: [(&str, &Option<Located>, &mut T); N],
        convert: impl Fn(chrono::Duration) -> Option<T>,
    ) {
        for (key, text, slot) in fields {
            if let Some(text) = text
                && let Some(parsed) = self.duration(text, key)
                && let Some(converted) = convert(parsed)
            {
                *slot = converted;
            }
        }
    }

    fn instant(&mut self, value: &Located, what: &str) -> Option<DateTime<chrono::FixedOffset>> {
        match DateTime::parse_from_rfc3339(value.value.trim()) {
            Ok(at) => Some(at),
            Err(err) => {
                self.error(
                    value.referenced,
                    format!("bad {what} '{}': {err}", value.value),
                    Some("write an RFC 3339 instant such as 2026-12-24T00:00:00+01:00".into()),
                );
                None
            }
        }
    }
}

/// A hint naming the zone the user probably meant.
fn zone_hint(err: &zone::Error) -> Option<String> {
    let written = match err {
        zone::Error::Unknown(written) => written,
        zone::Error::FixedOffsetLookalike { .. } => return err.hint(),
    };
    let names = chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name());
    Some(match closest(written.trim(), names) {
        Some(name) => format!("did you mean '{name}'?"),
        None => "use an IANA zone name such as Europe/Berlin or America/New_York".to_string(),
    })
}

/// A hint naming the closest known name, or listing the known names.
fn reference_hint<'a>(
    written: &str,
    known: impl IntoIterator<Item = &'a String> + Clone,
) -> String {
    match closest(written, known.clone().into_iter().map(String::as_str)) {
        Some(name) => format!("did you mean '{name}'?"),
        None => {
            let names: Vec<&str> = known.into_iter().map(String::as_str).collect();
            if names.is_empty() {
                "none are defined".to_string()
            } else {
                format!("defined: {}", names.join(", "))
            }
        }
    }
}

/// Whether `text` holds no YAML content at all: only blank lines, comments and document
/// markers.
fn is_empty_document(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// Parses and validates `text`, read from `path`.
pub fn validate(text: &str, path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let mut collector = Collector {
        file: path.to_path_buf(),
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        diagnostics: Vec::new(),
    };
    if is_empty_document(text) {
        collector.diagnostics.push(Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: "the configuration is empty: it has no schedules and no environments".into(),
            hint: Some(
                "start from an example in schedules/, e.g. 'timezone: Europe/Berlin', a schedule \
                 with 'uptime: [\"Mon-Fri 07:00-20:00\"]' and an environment using it"
                    .into(),
            ),
        });
        return Err(collector.diagnostics);
    }
    let raw: RawConfig = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let at = err.location().unwrap_or(Location::UNKNOWN);
            collector.error(at, syntax_message(&err), syntax_hint(&err));
            return Err(collector.diagnostics);
        }
    };
    let timezone = match &raw.timezone {
        Some(name) => collector.zone(name).unwrap_or(Zone::UTC),
        None => Zone::UTC,
    };
    let calendars: IndexMap<String, HolidaySet> = raw
        .calendars
        .iter()
        .map(|(name, calendar)| (name.clone(), calendar_days(&mut collector, calendar)))
        .collect();
    let schedules: IndexMap<String, Schedule> = raw
        .schedules
        .iter()
        .filter_map(|(name, schedule)| {
            compile_schedule(&mut collector, schedule, timezone, &calendars)
                .map(|compiled| (name.clone(), compiled))
        })
        .collect();
    let mut wake_hosts = HashMap::new();
    let environments: IndexMap<String, Environment> = raw
        .environments
        .iter()
        .filter_map(|(name, environment)| {
            environment_config(&mut collector, name, environment, &raw, &mut wake_hosts)
                .map(|env| (name.clone(), env))
        })
        .collect();
    let mut server = server_config(&mut collector, raw.server.as_ref());
    server.auth = auth::auth_config(
        &mut collector,
        raw.server.as_ref().map(|s| &s.value.auth),
        &raw.environments,
    );
    let reconciler = reconciler_config(&mut collector, raw.reconciler.as_ref());
    let kubernetes = kubernetes_config(&mut collector, raw.kubernetes.as_ref());
    let state = state_config(&mut collector, raw.state.as_ref());
    let cost = cost_model(&mut collector, raw.cost.as_ref());
    if let Some(simulation) = &raw.simulation {
        for problem in simulation.value.validate() {
            collector.error(
                simulation.referenced,
                format!("simulation: {problem}"),
                None,
            );
        }
    }
    let mut warnings = Vec::new();
    for finding in super::lint::lint(&raw, path) {
        match finding.severity {
            Severity::Error => collector.diagnostics.push(finding.diagnostic),
            Severity::Warning => warnings.push(Warning(finding.diagnostic)),
        }
    }
    if !collector.diagnostics.is_empty() {
        return Err(collector.diagnostics);
    }
    Ok(Config {
        path: path.to_path_buf(),
        timezone,
        calendars,
        schedules,
        environments,
        server,
        reconciler,
        kubernetes,
        state,
        simulation: raw.simulation.map(|s| s.value),
        cost,
        warnings,
    })
}

/// The parser's message without its own location prefix or source snippet.
pub(crate) fn syntax_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let without_prefix = first.strip_prefix("error: ").unwrap_or(first);
    // Drop a leading "line N column M: " that repeats the location.
    let without_prefix = match without_prefix.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => without_prefix,
    };
    // Drop a trailing " at line N column M" that repeats the location.
    match without_prefix.find(" at line ") {
        Some(index) => without_prefix[..index].to_string(),
        None => without_prefix.to_string(),
    }
}

fn syntax_hint(err: &serde_saphyr::Error) -> Option<String> {
    match err.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField { .. } => {
            Some("check the spelling against the configuration reference in the README".into())
        }
        serde_saphyr::Error::SerdeUnknownVariant { .. } => {
            Some("targets are kubernetes, aws_asg, aws_eks_nodegroup, aws_ec2 or aws_rds".into())
        }
        _ => None,
    }
}

fn calendar_days(collector: &mut Collector, calendar: &Spanned<RawCalendar>) -> HolidaySet {
    let mut days = HolidaySet::default();
    if calendar.value.ics.is_none() && calendar.value.dates.is_empty() {
        collector.error(
            calendar.referenced,
            "calendar has neither 'ics' nor 'dates'",
            Some("add 'ics: holidays/xx.ics' or 'dates: [2026-12-24]'".into()),
        );
    }
    if let Some(ics) = &calendar.value.ics {
        let file = collector.resolve_path(&ics.value);
        match std::fs::read_to_string(&file) {
            Ok(text) => match HolidaySet::parse_ics(&text) {
                Ok(parsed) => days.extend(&parsed),
                Err(err) => collector.error(
                    ics.referenced,
                    format!(
                        "holiday calendar '{}' is not valid iCalendar: {err}",
                        ics.value
                    ),
                    None,
                ),
            },
            Err(err) => collector.error(
                ics.referenced,
                format!("cannot read holiday calendar '{}': {err}", ics.value),
                Some("paths are relative to the configuration file".into()),
            ),
        }
    }
    let mut dates = Vec::new();
    for date in &calendar.value.dates {
        match NaiveDate::parse_from_str(date.value.trim(), "%Y-%m-%d") {
            Ok(day) => dates.push(day),
            Err(_) => collector.error(
                date.referenced,
                format!("bad date '{}'", date.value),
                Some("write dates as YYYY-MM-DD".into()),
            ),
        }
    }
    days.extend(&HolidaySet::from_dates(dates));
    days
}

fn compile_schedule(
    collector: &mut Collector,
    schedule: &Spanned<RawSchedule>,
    default_zone: Zone,
    calendars: &IndexMap<String, HolidaySet>,
) -> Option<Schedule> {
    let at = schedule.referenced;
    let raw = &schedule.value;
    let errors_before = collector.diagnostics.len();
    let zone = match &raw.timezone {
        Some(name) => collector.zone(name).unwrap_or(default_zone),
        None => default_zone,
    };
    let base = schedule_base(collector, raw, at);
    let mut holidays = HolidaySet::default();
    for name in &raw.holidays {
        match calendars.get(name.value.as_str()) {
            Some(days) => holidays.extend(days),
            None => {
                let hint = reference_hint(&name.value, calendars.keys());
                collector.error(
                    name.referenced,
                    format!("unknown calendar '{}'", name.value),
                    Some(hint),
                );
            }
        }
    }
    let holiday_state = match &raw.holidays_state {
        Some(state) => parse_state(collector, state).unwrap_or(State::Down),
        None => State::Down,
    };
    let exceptions = raw
        .exceptions
        .iter()
        .filter_map(|exception| {
            let from = collector.instant(&exception.value.from, "exception start");
            let to = collector.instant(&exception.value.to, "exception end");
            let state = parse_state(collector, &exception.value.state);
            let (from, to, state) = (from?, to?, state?);
            if to <= from {
                collector.error(
                    exception.value.to.referenced,
                    format!("exception ends ({}) before it starts ({from})", to),
                    Some("'to' must be after 'from'".into()),
                );
                return None;
            }
            Some(Exception {
                range: AbsoluteRange { from, to },
                state,
                reason: exception.value.reason.clone(),
            })
        })
        .collect();
    if collector.diagnostics.len() > errors_before {
        return None;
    }
    Some(
        Schedule::new(zone, base?)
            .with_holidays(holidays, holiday_state)
            .with_exceptions(exceptions),
    )
}

/// Windows, cron transitions or always-up, with the mixing rules enforced.
///
/// Every part that is present is parsed first, so its errors are reported even when the
/// parts are also mixed wrongly.
fn schedule_base(collector: &mut Collector, raw: &RawSchedule, at: Location) -> Option<Base> {
    let uptime = raw
        .uptime
        .as_ref()
        .map(|list| parse_spec_list(collector, list));
    let downtime = raw
        .downtime
        .as_ref()
        .map(|list| parse_spec_list(collector, list));
    let up_at = raw.up_at.as_ref().map(|expr| parse_cron(collector, expr));
    let down_at = raw.down_at.as_ref().map(|expr| parse_cron(collector, expr));
    let has_windows = uptime.is_some() || downtime.is_some();
    if has_windows && (up_at.is_some() || down_at.is_some()) {
        let place = raw
            .up_at
            .as_ref()
            .or(raw.down_at.as_ref())
            .map_or(at, |c| c.referenced);
        collector.error(
            place,
            "'uptime'/'downtime' windows and 'up_at'/'down_at' transitions are mixed",
            Some("a schedule uses either windows or cron transitions; split it in two".into()),
        );
        return None;
    }
    match (uptime, downtime, up_at, down_at) {
        (Some(_), Some(_), _, _) => {
            let place = raw.downtime.as_ref().map_or(at, |d| d.referenced);
            collector.error(
                place,
                "'uptime' and 'downtime' are both set",
                Some("write the windows as uptime only; outside them is downtime".into()),
            );
            None
        }
        (Some(uptime), None, _, _) => uptime.map(Base::Uptime),
        (None, Some(downtime), _, _) => downtime.map(Base::Downtime),
        (None, None, Some(up_at), Some(down_at)) => Some(Base::Cron {
            up_at: up_at?,
            down_at: down_at?,
        }),
        (None, None, Some(_), None) | (None, None, None, Some(_)) => {
            let place = raw
                .up_at
                .as_ref()
                .or(raw.down_at.as_ref())
                .map_or(at, |c| c.referenced);
            collector.error(
                place,
                "cron transitions need both 'up_at' and 'down_at'",
                Some("add the missing one, e.g. down_at: \"0 20 * * MON-FRI\"".into()),
            );
            None
        }
        (None, None, None, None) => Some(Base::AlwaysUp),
    }
}

fn parse_spec_list(
    collector: &mut Collector,
    list: &Spanned<super::raw::SpecList>,
) -> Option<Spec> {
    if list.value.0.is_empty() {
        collector.error(
            list.referenced,
            "empty spec list",
            Some("write at least one window, or 'never'".into()),
        );
        return None;
    }
    let mut items = Vec::new();
    let mut ok = true;
    for text in &list.value.0 {
        let at = if text.referenced.line() == 0 {
            list.referenced
        } else {
            text.referenced
        };
        match text.value.parse::<Spec>() {
            Ok(spec) => items.extend(spec.items),
            Err(err) => {
                ok = false;
                let hint = match &err {
                    spec::Error::Zone(err) => zone_hint(err),
                    spec::Error::UnknownDay(_) => {
                        Some("days are Mon, Tue, Wed, Thu, Fri, Sat, Sun".into())
                    }
                    _ => Some("e.g. 'Mon-Fri 07:30-20:30 Europe/Berlin', 'always', 'never'".into()),
                };
                collector.error(at, format!("in '{}': {err}", text.value), hint);
            }
        }
    }
    ok.then_some(Spec { items })
}

fn parse_cron(collector: &mut Collector, expr: &Located) -> Option<CronExpr> {
    match expr.value.parse::<CronExpr>() {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            collector.error(
                expr.referenced,
                format!("in cron '{}': {err}", expr.value),
                Some("standard 5 fields, e.g. \"0 7 * * MON-FRI\"".into()),
            );
            None
        }
    }
}

fn parse_state(collector: &mut Collector, state: &Located) -> Option<State> {
    match state.value.trim().parse::<State>() {
        Ok(state) => Some(state),
        Err(message) => {
            collector.error(state.referenced, message, Some("use up or down".into()));
            None
        }
    }
}

fn environment_config(
    collector: &mut Collector,
    name: &str,
    environment: &Spanned<RawEnvironment>,
    raw: &RawConfig,
    wake_hosts: &mut HashMap<String, String>,
) -> Option<Environment> {
    let env = &environment.value;
    let errors_before = collector.diagnostics.len();
    if !raw.schedules.contains_key(env.schedule.value.as_str()) {
        let hint = reference_hint(&env.schedule.value, raw.schedules.keys());
        collector.error(
            env.schedule.referenced,
            format!("unknown schedule '{}'", env.schedule.value),
            Some(hint),
        );
    }
    let max_override = env
        .overrides
        .as_ref()
        .and_then(|policy| policy.max_duration.as_ref())
        .and_then(|max| match duration::parse(&max.value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                collector.error(
                    max.referenced,
                    err.to_string(),
                    Some("e.g. 12h, 90m, 1h30m, 2d".into()),
                );
                None
            }
        });
    let mut targets = Vec::new();
    for target in &env.targets {
        let kind = target.value.kind();
        // A simulated estate needs no provider; the real one needs the provider built in.
        if let Some(feature) = target.value.left_out()
            && raw.simulation.is_none()
        {
            collector.error(
                target.referenced,
                format!("{kind} target: this build of curfew leaves out the {feature} provider"),
                Some(left_out_hint(feature)),
            );
            continue;
        }
        match TargetConfig::try_from(target.value.clone()) {
            Ok(compiled) => targets.push(compiled),
            Err(problems) => {
                for (field, problem) in problems.0 {
                    collector.error(
                        target.referenced,
                        format!("{kind} target, '{field}': {problem}"),
                        None,
                    );
                }
            }
        }
    }
    let wake = env
        .wake
        .as_ref()
        .and_then(|wake| super::wake::wake_config(collector, name, wake, max_override, wake_hosts));
    (collector.diagnostics.len() == errors_before).then(|| Environment {
        name: name.to_string(),
        schedule: env.schedule.value.clone(),
        max_override,
        targets,
        wake,
    })
}

fn server_config(collector: &mut Collector, raw: Option<&Spanned<RawServer>>) -> ServerConfig {
    let mut server = ServerConfig::default();
    let Some(raw) = raw else {
        return server;
    };
    let at = raw.referenced;
    let written = &raw.value;
    if let Some(listen) = &written.listen {
        match listen.value.parse::<SocketAddr>() {
            Ok(addr) => server.listen = addr,
            Err(_) => collector.error(
                listen.referenced,
                format!("server.listen '{}' is not an address", listen.value),
                Some("write host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".into()),
            ),
        }
    }
    if let Some(listen) = &written.wake_listen {
        match listen.value.parse::<SocketAddr>() {
            Ok(addr) => server.wake_listen = addr,
            Err(_) => collector.error(
                listen.referenced,
                format!("server.wake_listen '{}' is not an address", listen.value),
                Some("write host:port, e.g. 127.0.0.1:8081 or 0.0.0.0:8081".into()),
            ),
        }
    }
    if let Some(tokens) = &written.tokens_file {
        let resolved = collector.resolve_path(&tokens.value);
        if !resolved.is_file() {
            collector.error(
                tokens.referenced,
                format!("server.tokens_file '{}' does not exist", tokens.value),
                Some("paths are relative to the configuration file".into()),
            );
        }
        server.tokens_file = Some(resolved);
    }
    match written.body_limit_bytes {
        Some(0) => collector.error(
            at,
            "server.body_limit_bytes must be greater than zero",
            None,
        ),
        Some(limit) => server.body_limit_bytes = limit,
        None => {}
    }
    let timeouts = [
        (
            "server.request_timeout",
            &written.request_timeout,
            &mut server.request_timeout,
        ),
        (
            "server.header_read_timeout",
            &written.header_read_timeout,
            &mut server.header_read_timeout,
        ),
        (
            "server.idle_timeout",
            &written.idle_timeout,
            &mut server.idle_timeout,
        ),
    ];
    collector.durations(timeouts, |parsed| parsed.to_std().ok());
    if let Some(max) = &written.max_connections {
        if max.value > 0 {
            server.max_connections = max.value;
        } else {
            collector.error(
                max.referenced,
                "server.max_connections must be greater than zero",
                Some(format!("the default is {DEFAULT_MAX_CONNECTIONS}")),
            );
        }
    }
    if let Some(url) = &written.dashboards_url {
        server.dashboards_url = web_url(collector, "server.dashboards_url", url);
    }
    server.overrides = written.overrides;
    server.failed_auth = written.failed_auth;
    server.rate_limit = written.rate_limit;
    let (overrides, failed_auth, rate_limit) =
        (server.overrides, server.failed_auth, server.rate_limit);
    for (keys, positive) in [
        (
            "server.overrides: max_active_per_environment and max_active_per_token",
            overrides.max_active_per_environment > 0 && overrides.max_active_per_token > 0,
        ),
        (
            "server.failed_auth: per_minute and burst",
            failed_auth.per_minute > 0 && failed_auth.burst > 0,
        ),
        (
            "server.rate_limit: per_second and burst",
            rate_limit.per_second > 0 && rate_limit.burst > 0,
        ),
    ] {
        if !positive {
            collector.error(at, format!("{keys} must be greater than zero"), None);
        }
    }
    if let Some(public_url) = &written.public_url
        && let Some(url) = web_url(collector, "server.public_url", public_url)
    {
        server.public_url = Some(url.trim_end_matches('/').to_string());
    }
    if let Some(notifications) = &written.notifications {
        if let Some(problem) = web_url_problem(&notifications.webhook_url) {
            collector.error(
                at,
                format!(
                    "server.notifications.webhook_url '{}' {problem}",
                    crate::text::escape(&notifications.webhook_url)
                ),
                Some("write e.g. https://hooks.slack.com/services/T000/B000/XXXX".into()),
            );
        }
        if notifications.minutes_before == 0 {
            collector.error(
                at,
                "server.notifications.minutes_before must be greater than zero",
                None,
            );
        }
        server.notifications = Some(notifications.clone());
    }
    server
}

/// `written`, an `http://` or `https://` URL with a host, or `None` after reporting why not.
pub(super) fn web_url(collector: &mut Collector, key: &str, written: &Located) -> Option<String> {
    let url = written.value.trim();
    match web_url_problem(url) {
        None => Some(url.to_string()),
        Some(problem) => {
            collector.error(
                written.referenced,
                format!("{key} '{}' {problem}", crate::text::escape(url)),
                Some("write e.g. https://curfew.example.com".into()),
            );
            None
        }
    }
}

/// Why `url` is not an `http://` or `https://` URL with a host, if it is not.
fn web_url_problem(url: &str) -> Option<&'static str> {
    match url.parse::<http::Uri>() {
        Ok(uri) if !matches!(uri.scheme_str(), Some("http" | "https")) => {
            Some("must be an http:// or https:// URL")
        }
        Ok(uri) if uri.host().is_none_or(str::is_empty) => Some("has no host"),
        Ok(_) if url.len() > 2048 => Some("is longer than 2048 characters"),
        Ok(_) if url.contains(['"', '\'', '<', '>', '`', '\\']) => {
            Some("contains a character that a link cannot carry (quote, angle bracket, backslash)")
        }
        Ok(_) => None,
        Err(_) => Some("is not a URL"),
    }
}

fn reconciler_config(
    collector: &mut Collector,
    raw: Option<&Spanned<RawReconciler>>,
) -> ReconcilerConfig {
    let mut reconciler = ReconcilerConfig::default();
    let Some(raw) = raw else {
        return reconciler;
    };
    let written = &raw.value;
    let periods = [
        ("reconciler.tick", &written.tick, &mut reconciler.tick),
        (
            "reconciler.readiness_timeout",
            &written.readiness_timeout,
            &mut reconciler.readiness_timeout,
        ),
        (
            "reconciler.readiness_poll",
            &written.readiness_poll,
            &mut reconciler.readiness_poll,
        ),
        (
            "reconciler.database_readiness_timeout",
            &written.database_readiness_timeout,
            &mut reconciler.database_readiness_timeout,
        ),
    ];
    collector.durations(periods, Some);
    if reconciler.readiness_poll > reconciler.readiness_timeout {
        let at = written
            .readiness_poll
            .as_ref()
            .or(written.readiness_timeout.as_ref())
            .map_or(raw.referenced, |text| text.referenced);
        collector.error(
            at,
            "reconciler.readiness_poll is longer than reconciler.readiness_timeout",
            Some("poll readiness more often than the timeout, e.g. every 5s".into()),
        );
    }
    if reconciler.readiness_poll > reconciler.database_readiness_timeout
        && let Some(timeout) = &written.database_readiness_timeout
    {
        collector.error(
            timeout.referenced,
            "reconciler.database_readiness_timeout is shorter than reconciler.readiness_poll",
            Some("databases take minutes to start; the default is 30m".into()),
        );
    }
    if let Some(concurrency) = &written.concurrency {
        if (1..=MAX_CONCURRENCY).contains(&concurrency.value) {
            reconciler.concurrency = concurrency.value;
        } else {
            collector.error(
                concurrency.referenced,
                format!(
                    "reconciler.concurrency {} must be between 1 and {MAX_CONCURRENCY}",
                    concurrency.value
                ),
                Some(format!("the default is {DEFAULT_CONCURRENCY}")),
            );
        }
    }
    if let Some(enforce) = written.enforce {
        reconciler.enforce = enforce;
    }
    reconciler
}

fn kubernetes_config(
    collector: &mut Collector,
    raw: Option<&Spanned<RawKubernetes>>,
) -> KubernetesConfig {
    let mut kubernetes = KubernetesConfig::default();
    let Some(raw) = raw else {
        return kubernetes;
    };
    let written = &raw.value;
    let qps = written.qps.as_ref().and_then(|qps| {
        positive_rate(
            collector,
            qps,
            "kubernetes.qps",
            "a client-side cap on writes per second; leave it out to let the API server pace curfew"
                .to_string(),
        )
    });
    let burst = written.burst.as_ref().and_then(|burst| {
        if burst.value == 0 {
            collector.error(
                burst.referenced,
                "kubernetes.burst must be greater than zero",
                Some("writes at once after a quiet spell, e.g. twice kubernetes.qps".into()),
            );
            None
        } else if qps.is_none() && written.qps.is_none() {
            collector.error(
                burst.referenced,
                "kubernetes.burst has no effect without kubernetes.qps",
                Some("set kubernetes.qps as well, or leave both out".into()),
            );
            None
        } else {
            Some(burst.value)
        }
    });
    kubernetes.rate = qps.map(|qps| WriteRate {
        qps,
        burst: burst.unwrap_or_else(|| WriteRate::default_burst(qps)),
    });
    if let Some(concurrency) = &written.concurrency {
        if (1..=MAX_KUBERNETES_CONCURRENCY).contains(&concurrency.value) {
            kubernetes.concurrency = concurrency.value;
        } else {
            collector.error(
                concurrency.referenced,
                format!(
                    "kubernetes.concurrency {} must be between 1 and {MAX_KUBERNETES_CONCURRENCY}",
                    concurrency.value
                ),
                Some(format!(
                    "scale writes in flight; the default is {DEFAULT_KUBERNETES_CONCURRENCY}"
                )),
            );
        }
    }
    if let Some(events) = written.events {
        kubernetes.events = events;
    }
    if let Some(event_qps) = written.event_qps.as_ref().and_then(|qps| {
        positive_rate(
            collector,
            qps,
            "kubernetes.event_qps",
            format!("Events per second; the default is {DEFAULT_EVENT_QPS}"),
        )
    }) {
        kubernetes.event_qps = event_qps;
    }
    if let Some(queue) = &written.event_queue {
        if (1..=MAX_EVENT_QUEUE).contains(&queue.value) {
            kubernetes.event_queue = queue.value;
        } else {
            collector.error(
                queue.referenced,
                format!(
                    "kubernetes.event_queue {} must be between 1 and {MAX_EVENT_QUEUE}",
                    queue.value
                ),
                Some(format!(
                    "Events waiting to be written; the default is {DEFAULT_EVENT_QUEUE}"
                )),
            );
        }
    }
    kubernetes
}

/// A rate in calls per second, or an error at its location.
fn positive_rate(
    collector: &mut Collector,
    rate: &Spanned<f64>,
    key: &str,
    hint: String,
) -> Option<f64> {
    if rate.value.is_finite() && rate.value > 0.0 {
        Some(rate.value)
    } else {
        collector.error(
            rate.referenced,
            format!("{key} {} must be a positive number", rate.value),
            Some(hint),
        );
        None
    }
}

/// How to get a build with the provider of Cargo feature `feature`.
fn left_out_hint(feature: &str) -> String {
    format!("build curfew with its default features, or with --features {feature}")
}

fn state_config(collector: &mut Collector, raw: Option<&RawState>) -> StateConfig {
    let default = StateConfig::Dir(PathBuf::from(".curfew"));
    match raw {
        None => default,
        Some(RawState {
            dir: Some(dir),
            kubernetes: None,
        }) => StateConfig::Dir(PathBuf::from(&dir.value)),
        Some(RawState {
            dir: None,
            kubernetes: Some(kubernetes),
        }) => {
            if let Some(feature) = left_out("kubernetes", cfg!(feature = "kubernetes")) {
                collector.error(
                    kubernetes.referenced,
                    "state kept in Kubernetes, but this build of curfew leaves out the \
                     kubernetes provider",
                    Some(left_out_hint(feature)),
                );
            }
            StateConfig::Kubernetes(kubernetes.value.clone())
        }
        Some(RawState { dir, .. }) => {
            let at = dir.as_ref().map_or(Location::UNKNOWN, |d| d.referenced);
            collector.error(
                at,
                "state needs exactly one of 'dir' or 'kubernetes'",
                Some("e.g. state: { dir: ./.curfew }".into()),
            );
            default
        }
    }
}

fn cost_model(collector: &mut Collector, raw: Option<&Spanned<RawCost>>) -> CostModel {
    let mut catalog = match Catalog::embedded() {
        Ok(catalog) => catalog,
        Err(err) => {
            collector.error(Location::UNKNOWN, format!("embedded {err}"), None);
            Catalog::default()
        }
    };
    let mut settings = CostSettings::default();
    let Some(raw) = raw else {
        return CostModel::new(catalog, settings);
    };
    let at = raw.referenced;
    let cost = &raw.value;
    if let Some(file) = &cost.catalog_file {
        let path = collector.resolve_path(&file.value);
        match std::fs::read_to_string(&path) {
            Ok(text) => match Catalog::parse(&text) {
                Ok(extra) => catalog.extend(extra),
                Err(err) => {
                    collector.error(file.referenced, format!("{}: {err}", file.value), None)
                }
            },
            Err(err) => collector.error(
                file.referenced,
                format!("cannot read price catalog '{}': {err}", file.value),
                Some("paths are relative to the configuration file".into()),
            ),
        }
    }
    if let Some(region) = &cost.default_region {
        settings.default_region = region.value.trim().to_string();
    }
    match cost.spot_discount {
        Some(discount) if !(0.0..1.0).contains(&discount) => collector.error(
            at,
            format!("cost.spot_discount {discount} must be at least 0 and below 1"),
            Some("e.g. 0.65 for spot at 35% of the on-demand price".into()),
        ),
        Some(discount) => settings.spot_discount = discount,
        None => {}
    }
    for (name, rate) in [("cpu_hour", cost.cpu_hour), ("gib_hour", cost.gib_hour)] {
        if rate.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
            collector.error(
                at,
                format!("cost.{name} must be a positive number of dollars"),
                None,
            );
        }
    }
    settings.cpu_hour = cost.cpu_hour;
    settings.gib_hour = cost.gib_hour;
    CostModel::new(catalog, settings)
}
