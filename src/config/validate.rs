//! Turning the raw file into a [`Config`], collecting every problem with its location.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate};
use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::raw::{Located, RawCalendar, RawConfig, RawCost, RawEnvironment, RawSchedule, RawState};
use super::{Config, Diagnostic, Environment, StateConfig, closest, duration};
use crate::calendar::cron::CronExpr;
use crate::calendar::holidays::HolidaySet;
use crate::calendar::spec::{self, AbsoluteRange, Spec};
use crate::calendar::{Base, Exception, Schedule, State, Zone, zone};
use crate::cost::{Catalog, CostModel, CostSettings};

/// Collects diagnostics for one file.
struct Collector {
    file: PathBuf,
    base_dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

// === impl Collector ===

impl Collector {
    fn error(&mut self, at: Location, message: impl Into<String>, hint: Option<String>) {
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
    let environments: IndexMap<String, Environment> = raw
        .environments
        .iter()
        .filter_map(|(name, environment)| {
            environment_config(&mut collector, name, environment, &raw)
                .map(|env| (name.clone(), env))
        })
        .collect();
    let server = server_config(&mut collector, &raw);
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
        state,
        simulation: raw.simulation.map(|s| s.value),
        cost,
    })
}

/// The parser's message without its own location prefix or source snippet.
fn syntax_message(err: &serde_saphyr::Error) -> String {
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
    let text = err.to_string();
    if text.contains("unknown field") {
        Some("check the spelling against the configuration reference in the README".into())
    } else if text.contains("unknown variant") {
        Some("targets are kubernetes, aws_asg, aws_eks_nodegroup or aws_ec2".into())
    } else {
        None
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
    for target in &env.targets {
        for (field, problem) in target.value.problems() {
            collector.error(
                target.referenced,
                format!("{} target, '{field}': {problem}", target.value.kind()),
                None,
            );
        }
        if let super::TargetConfig::Kubernetes(k) = &target.value
            && let Some(grace) = &k.grace_period
            && let Err(err) = duration::parse(grace)
        {
            collector.error(target.referenced, format!("grace_period: {err}"), None);
        }
    }
    (collector.diagnostics.len() == errors_before).then(|| Environment {
        name: name.to_string(),
        schedule: env.schedule.value.clone(),
        max_override,
        targets: env.targets.iter().map(|t| t.value.clone()).collect(),
    })
}

fn server_config(collector: &mut Collector, raw: &RawConfig) -> super::ServerConfig {
    let at = raw
        .server
        .as_ref()
        .map_or(Location::UNKNOWN, |s| s.referenced);
    let mut server = raw
        .server
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    if server.listen.parse::<SocketAddr>().is_err() {
        collector.error(
            at,
            format!("server.listen '{}' is not an address", server.listen),
            Some("write host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".into()),
        );
    }
    if let Some(tokens) = &server.tokens_file {
        let resolved = collector.resolve_path(tokens);
        if !resolved.is_file() {
            collector.error(
                at,
                format!("server.tokens_file '{tokens}' does not exist"),
                Some("paths are relative to the configuration file".into()),
            );
        }
        server.tokens_file = Some(resolved.to_string_lossy().into_owned());
    }
    for problem in server_limit_problems(&server) {
        collector.error(at, problem, None);
    }
    server
}

/// What is wrong with the server's limits and notification settings.
fn server_limit_problems(server: &super::ServerConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if server.body_limit_bytes == 0 {
        problems.push("server.body_limit_bytes must be greater than zero".to_string());
    }
    if let Err(err) = duration::parse(&server.request_timeout) {
        problems.push(format!("server.request_timeout: {err}"));
    }
    if server.rate_limit.per_second == 0 || server.rate_limit.burst == 0 {
        problems.push("server.rate_limit: per_second and burst must be greater than zero".into());
    }
    if let Some(notifications) = &server.notifications {
        if !notifications.webhook_url.starts_with("http://") {
            problems.push(format!(
                "server.notifications.webhook_url '{}' must be an http:// URL (use a local relay for https)",
                notifications.webhook_url
            ));
        }
        if notifications.minutes_before == 0 {
            problems.push("server.notifications.minutes_before must be greater than zero".into());
        }
    }
    problems
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
        }) => StateConfig::Kubernetes(kubernetes.clone()),
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
