//! Holiday calendars: sets of whole local days on which a schedule is off.
//!
//! A [`HolidaySet`] is a sorted, deduplicated list of [`NaiveDate`]s. It can be
//! built from dates directly ([`HolidaySet::from_dates`]) or from an iCalendar
//! (`.ics`) text ([`HolidaySet::parse_ics`]), in which case every `VEVENT`
//! contributes each local day it (or any of its recurrences) touches.
//!
//! Parsing is strict: a calendar that has events but cannot be read fully is an
//! [`Error`] naming the offending property, value and line, never a silently
//! empty or partial set.

use std::collections::{HashMap, HashSet};

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone};
use icalendar::parser::{Component, Property, read_components};
use rrule::{Frequency, NWeekday, RRule, RRuleSet, Tz as RuleTz, Unvalidated};

/// Most occurrences a single `VEVENT`'s recurrence rules may produce up to
/// [`EXPANSION_END`]; a rule with more is rejected with
/// [`Error::TooManyOccurrences`] rather than silently truncated.
pub const MAX_OCCURRENCES_PER_EVENT: u16 = 50_000;

/// Last day covered by sets parsed from iCalendar text: rules without an end
/// are expanded up to and including this day, and later days are dropped.
pub const EXPANSION_END: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(day) => day,
    None => panic!("2100-12-31 is a valid date"),
};

/// The last whole second of a day, used for inclusive day ends.
const LAST_SECOND: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(time) => time,
    None => panic!("23:59:59 is a valid time"),
};

/// Errors produced while reading an iCalendar text.
///
/// Every message starts with `line N: ` when the 1-based line of the `.ics`
/// text is known; [`Error::line`] returns that number.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not well-formed iCalendar: not `NAME:value` content
    /// lines, unbalanced `BEGIN`/`END`, or no component at all.
    #[error("{}malformed iCalendar: {message}", at(.line))]
    Syntax {
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A `VEVENT` lacks a property it needs (its line is the `BEGIN:VEVENT`).
    #[error("{}VEVENT has no {property} property", at(.line))]
    MissingProperty {
        /// 1-based line of the `BEGIN:VEVENT`, when known.
        line: Option<usize>,
        /// Name of the missing property, e.g. `DTSTART`.
        property: &'static str,
    },
    /// A property value could not be interpreted.
    #[error("{}invalid {property} value `{value}`: {reason}", at(.line))]
    InvalidValue {
        /// 1-based line of the property, when known.
        line: Option<usize>,
        /// Property (or `RRULE` part) name, e.g. `DTEND` or `UNTIL`.
        property: &'static str,
        /// The offending value as written.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A `TZID` parameter names a time zone missing from the IANA database.
    #[error("{}{property}: unknown time zone TZID={tzid}", at(.line))]
    UnknownTimeZone {
        /// 1-based line of the property, when known.
        line: Option<usize>,
        /// Property carrying the parameter, e.g. `DTSTART`.
        property: &'static str,
        /// The unknown zone name.
        tzid: String,
    },
    /// An `RRULE` was rejected by the recurrence engine.
    #[error("{}invalid RRULE `{value}`: {source}", at(.line))]
    InvalidRule {
        /// 1-based line of the `RRULE`, when known.
        line: Option<usize>,
        /// The rule as written.
        value: String,
        /// The recurrence engine's explanation.
        source: Box<rrule::RRuleError>,
    },
    /// An event recurs more often than [`MAX_OCCURRENCES_PER_EVENT`] times up
    /// to [`EXPANSION_END`].
    #[error(
        "{}RRULE `{value}` has {limit} or more occurrences up to {end}; \
         bound it with COUNT or UNTIL or start it later",
        at(.line),
        end = EXPANSION_END
    )]
    TooManyOccurrences {
        /// 1-based line of the (first) `RRULE`, when known.
        line: Option<usize>,
        /// The rule as written.
        value: String,
        /// The cap that was reached.
        limit: u16,
    },
}

impl Error {
    /// The 1-based line of the `.ics` text the error refers to, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::MissingProperty { line, .. }
            | Self::InvalidValue { line, .. }
            | Self::UnknownTimeZone { line, .. }
            | Self::InvalidRule { line, .. }
            | Self::TooManyOccurrences { line, .. } => *line,
        }
    }
}

/// Formats the `line N: ` prefix of an error message.
fn at(line: &Option<usize>) -> String {
    line.map(|n| format!("line {n}: ")).unwrap_or_default()
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A set of whole local days on which a schedule is on holiday.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolidaySet {
    /// Sorted ascending, without duplicates.
    days: Vec<NaiveDate>,
}

impl HolidaySet {
    /// Builds a set from dates in any order; duplicates are collapsed.
    pub fn from_dates(dates: impl IntoIterator<Item = NaiveDate>) -> Self {
        let mut days: Vec<NaiveDate> = dates.into_iter().collect();
        days.sort_unstable();
        days.dedup();
        Self { days }
    }

    /// Whether `day` is a holiday.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.days.binary_search(&day).is_ok()
    }

    /// Adds every day of `other` to this set (set union).
    pub fn extend(&mut self, other: &HolidaySet) {
        let mut merged = Vec::with_capacity(self.days.len() + other.days.len());
        let (mut mine, mut theirs) = (self.days.iter().peekable(), other.days.iter().peekable());
        while let (Some(&&a), Some(&&b)) = (mine.peek(), theirs.peek()) {
            merged.push(a.min(b));
            if a <= b {
                mine.next();
            }
            if b <= a {
                theirs.next();
            }
        }
        merged.extend(mine);
        merged.extend(theirs);
        self.days = merged;
    }

    /// All holidays, sorted ascending and without duplicates.
    pub fn days(&self) -> &[NaiveDate] {
        &self.days
    }

    /// First holiday on or after `day`.
    pub fn next_on_or_after(&self, day: NaiveDate) -> Option<NaiveDate> {
        let index = self.days.partition_point(|&d| d < day);
        self.days.get(index).copied()
    }

    /// Whether the set has no days.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// Number of days in the set.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Parses an iCalendar (.ics) text into the days its VEVENTs cover.
    ///
    /// * Every `VEVENT` counts, wherever it is nested; other components
    ///   (`VTIMEZONE`, `VTODO`, `VALARM`, ...) and unknown properties are
    ///   ignored. Lines may end in CRLF or LF and may be folded (RFC 5545 §3.1).
    /// * All-day events (`DTSTART;VALUE=DATE:...`) cover `DTSTART` up to but
    ///   excluding `DTEND`, or `DURATION` days, or just `DTSTART`'s day.
    /// * Timed events cover every day they touch in their own zone: the
    ///   `TZID`'s local date, the UTC date for `...Z`, the written date for
    ///   floating times. An end exactly at midnight does not touch the next
    ///   day; an event without `DTEND`/`DURATION` covers its start day.
    ///   Durations are applied to local wall-clock time.
    /// * `RRULE`s (any `FREQ`, `INTERVAL`, `BY...`, `COUNT`, `UNTIL`) are
    ///   expanded up to and including [`EXPANSION_END`]; each occurrence
    ///   covers as many days as the first. `DTSTART` always counts as an
    ///   occurrence. `RDATE` (DATE, DATE-TIME or PERIOD) adds occurrences;
    ///   `EXDATE` removes them (a DATE removes every occurrence starting on
    ///   that day).
    /// * A `VEVENT` with `RECURRENCE-ID` replaces that occurrence of the event
    ///   with the same `UID`; events with `STATUS:CANCELLED` cover nothing.
    ///
    /// # Errors
    ///
    /// Text that is not iCalendar, a `VEVENT` without `DTSTART`, a malformed
    /// date, duration or rule, an unknown `TZID`, or a rule with more than
    /// [`MAX_OCCURRENCES_PER_EVENT`] occurrences yields an [`Error`].
    pub fn parse_ics(text: &str) -> Result<HolidaySet> {
        let source = Source::unfold(text);
        let structure = check_structure(&source)?;
        let components = parse_blocks(&structure)?;
        let mut events = vevents(&components, structure.vevents)?
            .into_iter()
            .map(|vevent| Event::parse(vevent, &source))
            .collect::<Result<Vec<_>>>()?;
        apply_overrides(&mut events);
        let mut ranges = Vec::new();
        for event in events.into_iter().filter(|event| !event.cancelled) {
            for (start, span) in event.occurrences()? {
                ranges.push(touched_days(start, span));
            }
        }
        Ok(Self::from_ranges(ranges))
    }

    /// Builds a set from inclusive day ranges, dropping days after
    /// [`EXPANSION_END`]. Overlaps are merged before days are listed, so the
    /// work is bounded by the number of distinct days.
    fn from_ranges(mut ranges: Vec<(NaiveDate, NaiveDate)>) -> Self {
        ranges.sort_unstable();
        let mut days = Vec::new();
        let mut next_unlisted: Option<NaiveDate> = None;
        for (first, last) in ranges {
            let last = last.min(EXPANSION_END);
            let mut day = next_unlisted.map_or(first, |next| next.max(first));
            while day <= last {
                days.push(day);
                match day.succ_opt() {
                    Some(following) => day = following,
                    None => break,
                }
            }
            next_unlisted = Some(day);
        }
        Self { days }
    }
}

/// First and last local day touched by an occurrence starting at `start`
/// (local wall-clock time) and lasting `span`; an end at exactly midnight does
/// not touch the day it opens.
fn touched_days(start: NaiveDateTime, span: TimeDelta) -> (NaiveDate, NaiveDate) {
    let first = start.date();
    if span <= TimeDelta::zero() {
        return (first, first);
    }
    let last = match start.checked_add_signed(span) {
        Some(end) if end.time() == NaiveTime::MIN => end.date().pred_opt().unwrap_or(first),
        Some(end) => end.date(),
        None => NaiveDate::MAX,
    };
    (first, last.max(first))
}

// ---------------------------------------------------------------------------
// Text handling: unfolding, line numbers, structure check.
// ---------------------------------------------------------------------------

/// The unfolded content lines of an `.ics` text (joined by `\n`), with a map
/// back to the physical line each logical line starts on.
struct Source {
    /// Logical content lines separated by `\n`.
    text: String,
    /// `(byte offset in text, 1-based physical line)` of each logical line.
    starts: Vec<(usize, usize)>,
}

impl Source {
    /// Unfolds RFC 5545 continuation lines (a line break followed by a space
    /// or tab) and normalises CRLF to LF.
    ///
    /// `icalendar::parser::unfold` does the same but loses the line numbers
    /// needed for error messages, hence this version.
    fn unfold(input: &str) -> Self {
        let input = input.strip_prefix('\u{feff}').unwrap_or(input);
        let mut text = String::with_capacity(input.len());
        let mut starts = Vec::new();
        for (index, raw) in input.split('\n').enumerate() {
            let physical = raw.strip_suffix('\r').unwrap_or(raw);
            match physical.strip_prefix([' ', '\t']) {
                Some(continuation) if !starts.is_empty() => text.push_str(continuation),
                _ => {
                    if !starts.is_empty() {
                        text.push('\n');
                    }
                    starts.push((text.len(), index + 1));
                    text.push_str(physical);
                }
            }
        }
        Self { text, starts }
    }

    /// Logical lines with their byte offset and the physical line number
    /// each starts on.
    fn lines(&self) -> impl Iterator<Item = (usize, usize, &str)> {
        self.starts
            .iter()
            .zip(self.text.split('\n'))
            .map(|(&(offset, line), content)| (offset, line, content))
    }

    /// Physical line on which `fragment`, a slice of `self.text`, starts.
    fn line_of(&self, fragment: &str) -> Option<usize> {
        let offset = fragment
            .as_ptr()
            .addr()
            .checked_sub(self.text.as_ptr().addr())?;
        if offset > self.text.len() {
            return None;
        }
        let index = self
            .starts
            .partition_point(|&(start, _)| start <= offset)
            .checked_sub(1)?;
        self.starts.get(index).map(|&(_, line)| line)
    }
}

/// What [`check_structure`] found in a well-formed text.
struct Structure<'s> {
    /// Each top-level `BEGIN`...`END` block with the line it starts on.
    roots: Vec<(&'s str, usize)>,
    /// How many `BEGIN:VEVENT` lines there are.
    vevents: usize,
}

/// Checks that every non-blank line is a `NAME[;PARAMS]:VALUE` content line
/// inside balanced `BEGIN`/`END` blocks.
///
/// The `icalendar` parser reports errors relative to its input and without
/// naming the offending line well, so this check is what turns garbage into
/// an error with a line number.
fn check_structure(source: &Source) -> Result<Structure<'_>> {
    let mut open: Vec<OpenBlock<'_>> = Vec::new();
    let mut structure = Structure {
        roots: Vec::new(),
        vevents: 0,
    };
    for (offset, line, content) in source.lines() {
        if content.trim().is_empty() {
            continue;
        }
        let (name, value) = split_content_line(content).ok_or_else(|| {
            syntax(
                line,
                format!("expected `NAME:value`, found `{}`", preview(content)),
            )
        })?;
        if name.eq_ignore_ascii_case("BEGIN") {
            let kind = value.trim();
            if kind.is_empty() {
                return Err(syntax(line, "BEGIN without a component name".to_owned()));
            }
            structure.vevents += usize::from(kind.eq_ignore_ascii_case("VEVENT"));
            open.push(OpenBlock { kind, line, offset });
        } else if name.eq_ignore_ascii_case("END") {
            let block = close_block(&mut open, value, line)?;
            if open.is_empty() {
                let text = source.text.get(block.offset..offset + content.len());
                structure.roots.push((text.unwrap_or_default(), block.line));
            }
        } else if open.is_empty() {
            return Err(syntax(
                line,
                format!("property {name} outside of any BEGIN/END block"),
            ));
        }
    }
    if let Some(OpenBlock { kind, line, .. }) = open.pop() {
        return Err(syntax(
            line,
            format!("BEGIN:{kind} is never closed by END:{kind}"),
        ));
    }
    if structure.roots.is_empty() {
        return Err(Error::Syntax {
            line: None,
            message: "no BEGIN:VCALENDAR found; the text is not an iCalendar file".to_owned(),
        });
    }
    Ok(structure)
}

/// A `BEGIN` line whose `END` has not been seen yet.
struct OpenBlock<'s> {
    /// Component name as written, e.g. `VEVENT`.
    kind: &'s str,
    /// 1-based physical line of the `BEGIN`.
    line: usize,
    /// Byte offset of the `BEGIN` line in the unfolded text.
    offset: usize,
}

/// Pops the innermost open block, which must be the one `END:value` closes
/// (names compare exactly, as the `icalendar` parser requires).
fn close_block<'s>(
    open: &mut Vec<OpenBlock<'s>>,
    value: &str,
    line: usize,
) -> Result<OpenBlock<'s>> {
    let kind = value.trim();
    match open.pop() {
        Some(block) if block.kind == kind => Ok(block),
        Some(block) => Err(syntax(
            line,
            format!(
                "END:{kind} does not match BEGIN:{} on line {}",
                block.kind, block.line
            ),
        )),
        None => Err(syntax(line, format!("END:{kind} without a matching BEGIN"))),
    }
}

/// Splits a content line into its name and value, or `None` when it is not
/// `NAME[;PARAMS]:VALUE` (a `:` inside a quoted parameter does not count).
fn split_content_line(content: &str) -> Option<(&str, &str)> {
    let name_end = content.find([';', ':'])?;
    let name = content.get(..name_end)?;
    let valid_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_name {
        return None;
    }
    let mut quoted = false;
    for (index, c) in content.char_indices().skip_while(|&(i, _)| i < name_end) {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((name, content.get(index + 1..)?)),
            _ => {}
        }
    }
    None
}

/// Shortens a line for inclusion in an error message.
fn preview(content: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut shown: String = content.chars().take(MAX_CHARS).collect();
    if content.chars().nth(MAX_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// A syntax error on a known line.
fn syntax(line: usize, message: String) -> Error {
    Error::Syntax {
        line: Some(line),
        message,
    }
}

/// Runs the `icalendar` parser over each top-level block.
fn parse_blocks<'s>(structure: &Structure<'s>) -> Result<Vec<Component<'s>>> {
    let mut components = Vec::new();
    for &(block, line) in &structure.roots {
        let parsed = read_components(block).map_err(|message| Error::Syntax {
            line: Some(line),
            message: format!(
                "the iCalendar parser rejected this block: {}",
                message.lines().next().unwrap_or_default()
            ),
        })?;
        components.extend(parsed);
    }
    Ok(components)
}

/// Every `VEVENT` in `components`, checked against the `expected` count so
/// that no event can go missing silently.
fn vevents<'c, 'a>(
    components: &'c [Component<'a>],
    expected: usize,
) -> Result<Vec<&'c Component<'a>>> {
    let mut found = Vec::new();
    collect_vevents(components, &mut found);
    if found.len() != expected {
        return Err(Error::Syntax {
            line: None,
            message: format!(
                "found {expected} BEGIN:VEVENT lines but could read only {} events",
                found.len()
            ),
        });
    }
    Ok(found)
}

/// Appends every `VEVENT` in `components` (at any depth) to `out`.
fn collect_vevents<'c, 'a>(components: &'c [Component<'a>], out: &mut Vec<&'c Component<'a>>) {
    for component in components {
        if component.name.as_str().eq_ignore_ascii_case("VEVENT") {
            out.push(component);
        }
        collect_vevents(&component.components, out);
    }
}

// ---------------------------------------------------------------------------
// Values: dates, date-times, zones, durations.
// ---------------------------------------------------------------------------

/// How a DATE-TIME value maps to real time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    /// No zone: the wall-clock time as written.
    Floating,
    /// UTC (`...Z`).
    Utc,
    /// A `TZID` from the IANA database.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// UTC time of a local wall-clock time in this zone.
    fn to_utc(self, local: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Floating | Self::Utc => local,
            Self::Named(tz) => resolve_local(tz, local).naive_utc(),
        }
    }

    /// Local wall-clock time in this zone of a UTC time.
    fn local_of_utc(self, utc: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Floating | Self::Utc => utc,
            Self::Named(tz) => tz.from_utc_datetime(&utc).naive_local(),
        }
    }

    /// A local time in this zone as the recurrence engine wants it; floating
    /// and all-day times are expanded in UTC, which has no DST to shift them.
    fn rule_time(self, local: NaiveDateTime) -> DateTime<RuleTz> {
        match self {
            Self::Floating | Self::Utc => RuleTz::UTC.from_utc_datetime(&local),
            Self::Named(tz) => RuleTz::Tz(tz).from_utc_datetime(&self.to_utc(local)),
        }
    }
}

/// Resolves a local time in `tz`: the earlier instant when it is ambiguous,
/// and the offset before the transition when it falls in a DST gap (as
/// RFC 5545 §3.3.5 prescribes).
fn resolve_local(tz: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<chrono_tz::Tz> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(resolved) | LocalResult::Ambiguous(resolved, _) => resolved,
        LocalResult::None => {
            let before = local
                .checked_sub_signed(TimeDelta::days(1))
                .unwrap_or(local);
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = local.checked_sub_offset(offset).unwrap_or(local);
            tz.from_utc_datetime(&utc)
        }
    }
}

/// Looks up a `TZID`, also accepting globally unique forms such as
/// `/Europe/Berlin` or `/mozilla.org/20050126_1/Europe/Berlin`.
fn lookup_zone(tzid: &str) -> Option<chrono_tz::Tz> {
    let tzid = tzid.trim();
    std::iter::once(tzid)
        .chain(
            tzid.match_indices('/')
                .filter_map(|(i, _)| tzid.get(i + 1..)),
        )
        .find_map(|candidate| candidate.parse().ok())
}

/// A parsed DATE or DATE-TIME value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stamp {
    /// `YYYYMMDD`.
    Date(NaiveDate),
    /// `YYYYMMDDTHHMMSS[Z]` with the zone it is in.
    DateTime(NaiveDateTime, Zone),
}

/// Parses `YYYYMMDD` or `YYYYMMDDTHHMMSS[Z]`; `zone` applies unless `Z`.
fn parse_stamp(text: &str, zone: Zone) -> Option<Stamp> {
    let Some((date, time)) = text.split_once(['T', 't']) else {
        return parse_date(text).map(Stamp::Date);
    };
    let (time, zone) = match time.strip_suffix(['Z', 'z']) {
        Some(utc_time) => (utc_time, Zone::Utc),
        None => (time, zone),
    };
    let local = parse_date(date)?.and_time(parse_time(time)?);
    Some(Stamp::DateTime(local, zone))
}

/// Parses exactly eight digits `YYYYMMDD`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 {
        return None;
    }
    let year = digits(text.get(0..4)?)?;
    NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        digits(text.get(4..6)?)?,
        digits(text.get(6..8)?)?,
    )
}

/// Parses exactly six digits `HHMMSS`.
fn parse_time(text: &str) -> Option<NaiveTime> {
    if text.len() != 6 {
        return None;
    }
    NaiveTime::from_hms_opt(
        digits(text.get(0..2)?)?,
        digits(text.get(2..4)?)?,
        digits(text.get(4..6)?)?,
    )
}

/// Parses a non-empty run of ASCII digits.
fn digits(text: &str) -> Option<u32> {
    let all_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| text.parse().ok()).flatten()
}

/// Parses an RFC 5545 DURATION (`P2W`, `P1D`, `PT8H30M`, `P1DT12H`, `+P1D`);
/// negative durations are rejected.
fn parse_duration(text: &str) -> Option<TimeDelta> {
    let body = text.strip_prefix('+').unwrap_or(text).strip_prefix('P')?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((date_part, time_part)) => (date_part, Some(time_part)),
        None => (body, None),
    };
    let mut seconds = sum_units(date_part, &[('W', 7 * 86_400), ('D', 86_400)])?;
    match time_part {
        Some("") => return None,
        Some(time) => {
            seconds =
                seconds.checked_add(sum_units(time, &[('H', 3_600), ('M', 60), ('S', 1)])?)?;
        }
        None if date_part.is_empty() => return None,
        None => {}
    }
    TimeDelta::try_seconds(seconds)
}

/// Sums `<digits><unit>` groups such as `1W2D` into seconds.
fn sum_units(text: &str, units: &[(char, i64)]) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            let so_far = number.unwrap_or(0).checked_mul(10)?;
            number = Some(so_far.checked_add(i64::from(digit))?);
        } else {
            let &(_, factor) = units.iter().find(|&&(unit, _)| unit == c)?;
            total = total.checked_add(number.take()?.checked_mul(factor)?)?;
        }
    }
    number.is_none().then_some(total)
}

/// The `VALUE` parameter of a date property.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueKind {
    /// `VALUE=DATE`.
    Date,
    /// `VALUE=DATE-TIME`.
    DateTime,
    /// `VALUE=PERIOD` (only meaningful for `RDATE`).
    Period,
}

/// Reason given for an unreadable date value.
const DATE_FORMAT_HINT: &str =
    "expected a DATE (YYYYMMDD) or DATE-TIME (YYYYMMDDTHHMMSS, optionally ending in Z)";

/// Reason given for an unreadable duration.
const DURATION_FORMAT_HINT: &str = "expected a non-negative duration such as P1D, P2W or PT8H30M";

/// A property of a `VEVENT`, with what error messages need to name it.
struct Prop<'p> {
    /// Upper-case property name.
    name: &'static str,
    /// The parsed property.
    inner: &'p Property<'p>,
    /// 1-based physical line, when known.
    line: Option<usize>,
}

impl<'p> Prop<'p> {
    /// The property value without surrounding whitespace.
    fn value(&self) -> &'p str {
        self.inner.val.as_str().trim()
    }

    /// Value of the parameter `key` (case-insensitive), if present.
    fn param(&self, key: &str) -> Option<&'p str> {
        self.inner
            .params
            .iter()
            .find(|param| param.key.as_str().eq_ignore_ascii_case(key))
            .and_then(|param| param.val.as_ref())
            .map(|val| val.as_str().trim())
    }

    /// An [`Error::InvalidValue`] for `value` of this property.
    fn invalid(&self, value: &str, reason: impl Into<String>) -> Error {
        Error::InvalidValue {
            line: self.line,
            property: self.name,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// The zone named by `TZID`, or floating without one.
    fn zone(&self) -> Result<Zone> {
        let Some(tzid) = self.param("TZID") else {
            return Ok(Zone::Floating);
        };
        lookup_zone(tzid)
            .map(Zone::Named)
            .ok_or_else(|| Error::UnknownTimeZone {
                line: self.line,
                property: self.name,
                tzid: tzid.to_owned(),
            })
    }

    /// The `VALUE` parameter, if present.
    fn value_kind(&self) -> Result<Option<ValueKind>> {
        let Some(kind) = self.param("VALUE") else {
            return Ok(None);
        };
        match kind.to_ascii_uppercase().as_str() {
            "DATE" => Ok(Some(ValueKind::Date)),
            "DATE-TIME" => Ok(Some(ValueKind::DateTime)),
            "PERIOD" => Ok(Some(ValueKind::Period)),
            _ => Err(self.invalid(self.value(), format!("unsupported VALUE={kind}"))),
        }
    }

    /// The single DATE or DATE-TIME value of this property.
    fn stamp(&self) -> Result<Stamp> {
        match self.stamps()?.as_slice() {
            [stamp] => Ok(*stamp),
            _ => Err(self.invalid(self.value(), "expected exactly one value")),
        }
    }

    /// The comma-separated DATE or DATE-TIME values of this property.
    fn stamps(&self) -> Result<Vec<Stamp>> {
        let zone = self.zone()?;
        let kind = self.value_kind()?;
        self.value()
            .split(',')
            .map(|item| self.checked_stamp(item.trim(), zone, kind))
            .collect()
    }

    /// Parses one value and checks it against the `VALUE` parameter.
    fn checked_stamp(&self, item: &str, zone: Zone, kind: Option<ValueKind>) -> Result<Stamp> {
        let stamp = parse_stamp(item, zone).ok_or_else(|| self.invalid(item, DATE_FORMAT_HINT))?;
        match (kind, stamp) {
            (Some(ValueKind::Period), _) => {
                Err(self.invalid(item, "VALUE=PERIOD is only allowed in RDATE"))
            }
            (Some(ValueKind::Date), Stamp::DateTime(..)) => {
                Err(self.invalid(item, "VALUE=DATE requires YYYYMMDD"))
            }
            (Some(ValueKind::DateTime), Stamp::Date(_)) => {
                Err(self.invalid(item, "VALUE=DATE-TIME requires YYYYMMDDTHHMMSS"))
            }
            _ => Ok(stamp),
        }
    }

    /// This property's value as a DURATION.
    fn duration(&self) -> Result<TimeDelta> {
        let value = self.value();
        parse_duration(value).ok_or_else(|| self.invalid(value, DURATION_FORMAT_HINT))
    }
}

/// All properties called `name` (case-insensitive) of a component.
fn props<'c>(
    component: &'c Component<'c>,
    name: &'static str,
    source: &Source,
) -> impl Iterator<Item = Prop<'c>> {
    component
        .properties
        .iter()
        .filter(move |property| property.name.as_str().eq_ignore_ascii_case(name))
        .map(move |property| Prop {
            name,
            inner: property,
            line: source.line_of(property.name.as_str()),
        })
}

/// The property called `name`, which may appear at most once.
fn only_one<'c>(
    component: &'c Component<'c>,
    name: &'static str,
    source: &Source,
) -> Result<Option<Prop<'c>>> {
    let mut found = props(component, name, source);
    let first = found.next();
    match found.next() {
        Some(extra) => Err(extra.invalid(
            extra.value(),
            format!("{name} may appear only once per VEVENT"),
        )),
        None => Ok(first),
    }
}

// ---------------------------------------------------------------------------
// Events and their occurrences.
// ---------------------------------------------------------------------------

/// The time frame of an event, set by its `DTSTART`.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Whether `DTSTART` is a DATE.
    all_day: bool,
    /// Zone whose local days the event covers (floating when all-day).
    zone: Zone,
}

impl Frame {
    /// The frame of an event starting at `start`.
    fn of(start: Stamp) -> Self {
        match start {
            Stamp::Date(_) => Self {
                all_day: true,
                zone: Zone::Floating,
            },
            Stamp::DateTime(_, zone) => Self {
                all_day: false,
                zone,
            },
        }
    }

    /// Local wall-clock time of `stamp` in this frame (midnight for a DATE).
    fn local(self, stamp: Stamp) -> NaiveDateTime {
        match stamp {
            Stamp::Date(day) => day.and_time(NaiveTime::MIN),
            Stamp::DateTime(time, from) => match (from, self.zone) {
                (Zone::Floating, _) | (_, Zone::Floating) => time,
                (from, to) => to.local_of_utc(from.to_utc(time)),
            },
        }
    }

    /// `UNTIL` as the UTC instant the recurrence engine requires; a DATE
    /// includes the whole day.
    fn until(self, stamp: Stamp) -> DateTime<RuleTz> {
        let local = match stamp {
            Stamp::Date(day) => day.and_time(LAST_SECOND),
            Stamp::DateTime(..) => self.local(stamp),
        };
        self.zone.rule_time(local).with_timezone(&RuleTz::UTC)
    }
}

/// Occurrence starts removed by `EXDATE` or `RECURRENCE-ID`.
#[derive(Debug, Default)]
struct Exclusions {
    /// Every occurrence starting on one of these local days is removed.
    days: HashSet<NaiveDate>,
    /// Occurrences starting at exactly these local times are removed.
    starts: HashSet<NaiveDateTime>,
}

impl Exclusions {
    /// Excludes `stamp`: a DATE (or any value for an all-day event) removes
    /// its whole day, a DATE-TIME the occurrence starting at that instant.
    fn insert(&mut self, frame: Frame, stamp: Stamp) {
        let local = frame.local(stamp);
        if frame.all_day || matches!(stamp, Stamp::Date(_)) {
            self.days.insert(local.date());
        } else {
            self.starts.insert(local);
        }
    }

    /// Whether an occurrence starting at `start` is excluded.
    fn contains(&self, start: NaiveDateTime) -> bool {
        self.days.contains(&start.date()) || self.starts.contains(&start)
    }
}

/// One `RRULE` of an event, parsed but not yet tied to its start.
struct RuleSpec {
    /// The rule as written, for error messages.
    text: String,
    /// 1-based physical line, when known.
    line: Option<usize>,
    /// The rule without its `UNTIL`.
    rule: RRule<Unvalidated>,
    /// `UNTIL`, parsed here because the engine reads zone-less values as the
    /// machine's local time.
    until: Option<Stamp>,
}

impl RuleSpec {
    /// Parses an `RRULE` property.
    fn parse(prop: &Prop<'_>) -> Result<Self> {
        let text = prop.value();
        let mut until = None;
        let mut parts = Vec::new();
        for part in text.split(';').filter(|part| !part.trim().is_empty()) {
            match part.split_once('=') {
                Some((key, value)) if key.trim().eq_ignore_ascii_case("UNTIL") => {
                    until = Some(parse_until(prop, value.trim())?);
                }
                _ => parts.push(part),
            }
        }
        let rule = parts
            .join(";")
            .parse()
            .map_err(|source| Error::InvalidRule {
                line: prop.line,
                value: text.to_owned(),
                source: Box::new(source),
            })?;
        check_rule_parts(&rule).map_err(|reason| prop.invalid(text, reason))?;
        Ok(Self {
            text: text.to_owned(),
            line: prop.line,
            rule,
            until,
        })
    }

    /// Validates the rule against the event's start.
    fn validate(self, frame: Frame, dt_start: DateTime<RuleTz>) -> Result<RRule> {
        let rule = match self.until {
            Some(until) => self.rule.until(frame.until(until)),
            None => self.rule,
        };
        rule.validate(dt_start)
            .map_err(|source| Error::InvalidRule {
                line: self.line,
                value: self.text,
                source: Box::new(source),
            })
    }
}

/// Rejects rule parts RFC 5545 forbids but the recurrence engine would
/// quietly misread (it yields nothing for `INTERVAL=0`, and every day for
/// `FREQ=WEEKLY;BYDAY=4TH`).
fn check_rule_parts(rule: &RRule<Unvalidated>) -> Result<(), &'static str> {
    if rule.get_interval() == 0 {
        return Err("INTERVAL must be at least 1");
    }
    if rule.get_count() == Some(0) {
        return Err("COUNT must be at least 1");
    }
    let ordinal_allowed = matches!(rule.get_freq(), Frequency::Monthly | Frequency::Yearly);
    let has_ordinal = rule
        .get_by_weekday()
        .iter()
        .any(|weekday| matches!(weekday, NWeekday::Nth(..)));
    if has_ordinal && !ordinal_allowed {
        return Err("BYDAY with an ordinal such as 4TH needs FREQ=MONTHLY or FREQ=YEARLY");
    }
    Ok(())
}

/// Parses the `UNTIL` part of an `RRULE`.
fn parse_until(prop: &Prop<'_>, value: &str) -> Result<Stamp> {
    parse_stamp(value, Zone::Floating).ok_or_else(|| Error::InvalidValue {
        line: prop.line,
        property: "UNTIL",
        value: value.to_owned(),
        reason: format!("{DATE_FORMAT_HINT} in RRULE `{}`", prop.value()),
    })
}

/// A `VEVENT` reduced to what decides the days it covers.
struct Event {
    /// `UID`, linking recurrence overrides to their master event.
    uid: Option<String>,
    /// `RECURRENCE-ID`: the master occurrence this event replaces.
    recurrence_id: Option<Stamp>,
    /// `STATUS:CANCELLED`.
    cancelled: bool,
    /// Frame set by `DTSTART`.
    frame: Frame,
    /// Local wall-clock start.
    start: NaiveDateTime,
    /// Wall-clock length of each occurrence.
    span: TimeDelta,
    /// `RRULE`s.
    rules: Vec<RuleSpec>,
    /// `RDATE` occurrences: local start and length.
    extra: Vec<(NaiveDateTime, TimeDelta)>,
    /// `EXDATE`s and overridden occurrences.
    exclusions: Exclusions,
}

impl Event {
    /// Reads the properties of a `VEVENT`.
    fn parse(component: &Component<'_>, source: &Source) -> Result<Self> {
        let dtstart =
            only_one(component, "DTSTART", source)?.ok_or_else(|| Error::MissingProperty {
                line: source.line_of(component.name.as_str()),
                property: "DTSTART",
            })?;
        let start_stamp = dtstart.stamp()?;
        let frame = Frame::of(start_stamp);
        let start = frame.local(start_stamp);
        let span = event_span(component, source, frame, start)?;
        let mut exclusions = Exclusions::default();
        for prop in props(component, "EXDATE", source) {
            for stamp in prop.stamps()? {
                exclusions.insert(frame, stamp);
            }
        }
        let first = |name| props(component, name, source).next();
        Ok(Self {
            uid: first("UID").map(|prop| prop.value().to_owned()),
            recurrence_id: first("RECURRENCE-ID")
                .map(|prop| prop.stamp())
                .transpose()?,
            cancelled: first("STATUS").is_some_and(|p| p.value().eq_ignore_ascii_case("CANCELLED")),
            frame,
            start,
            span,
            rules: props(component, "RRULE", source)
                .map(|prop| RuleSpec::parse(&prop))
                .collect::<Result<_>>()?,
            extra: rdates(component, source, frame, span)?,
            exclusions,
        })
    }

    /// Local start and length of every occurrence up to [`EXPANSION_END`]
    /// (and beyond, for `DTSTART` and `RDATE`), minus exclusions.
    fn occurrences(self) -> Result<Vec<(NaiveDateTime, TimeDelta)>> {
        let mut occurrences = vec![(self.start, self.span)];
        let repeats = expand_rules(self.rules, self.frame, self.start)?;
        occurrences.extend(repeats.into_iter().map(|start| (start, self.span)));
        occurrences.extend(self.extra);
        occurrences.retain(|&(start, _)| !self.exclusions.contains(start));
        Ok(occurrences)
    }
}

/// Wall-clock length of an event from `DTEND` or `DURATION`; one day for an
/// all-day event without either, zero for a timed one.
fn event_span(
    component: &Component<'_>,
    source: &Source,
    frame: Frame,
    start: NaiveDateTime,
) -> Result<TimeDelta> {
    let dtend = only_one(component, "DTEND", source)?;
    let duration = only_one(component, "DURATION", source)?;
    match (dtend, duration) {
        (Some(end), Some(_)) => {
            Err(end.invalid(end.value(), "DTEND and DURATION must not both be present"))
        }
        (Some(end), None) => end_span(&end, frame, start),
        (None, Some(duration)) => duration.duration(),
        (None, None) if frame.all_day => Ok(TimeDelta::days(1)),
        (None, None) => Ok(TimeDelta::zero()),
    }
}

/// Wall-clock length from `start` to the `DTEND` property `end`.
fn end_span(end: &Prop<'_>, frame: Frame, start: NaiveDateTime) -> Result<TimeDelta> {
    let stamp = end.stamp()?;
    match (frame.all_day, stamp) {
        (true, Stamp::DateTime(..)) => {
            return Err(end.invalid(end.value(), "DTEND must be a DATE because DTSTART is one"));
        }
        (false, Stamp::Date(_)) => {
            return Err(end.invalid(
                end.value(),
                "DTEND must be a DATE-TIME because DTSTART is one",
            ));
        }
        _ => {}
    }
    let span = frame.local(stamp) - start;
    if span < TimeDelta::zero() {
        return Err(end.invalid(end.value(), "DTEND is before DTSTART"));
    }
    Ok(span)
}

/// Occurrences added by `RDATE`s: DATE or DATE-TIME values last `span`, a
/// PERIOD lasts as long as it says.
fn rdates(
    component: &Component<'_>,
    source: &Source,
    frame: Frame,
    span: TimeDelta,
) -> Result<Vec<(NaiveDateTime, TimeDelta)>> {
    let mut occurrences = Vec::new();
    for prop in props(component, "RDATE", source) {
        if prop.value_kind()? == Some(ValueKind::Period) {
            let zone = prop.zone()?;
            for item in prop.value().split(',') {
                occurrences.push(parse_period(&prop, item.trim(), zone, frame)?);
            }
        } else {
            occurrences.extend(
                prop.stamps()?
                    .into_iter()
                    .map(|stamp| (frame.local(stamp), span)),
            );
        }
    }
    Ok(occurrences)
}

/// Parses a PERIOD (`start/end` or `start/duration`) into local start and length.
fn parse_period(
    prop: &Prop<'_>,
    item: &str,
    zone: Zone,
    frame: Frame,
) -> Result<(NaiveDateTime, TimeDelta)> {
    let reason = "expected a PERIOD such as 20261224T080000Z/PT8H";
    let (start, end) = item
        .split_once('/')
        .ok_or_else(|| prop.invalid(item, reason))?;
    let start = parse_stamp(start, zone).ok_or_else(|| prop.invalid(item, reason))?;
    let start = frame.local(start);
    let span = match parse_stamp(end, zone) {
        Some(end) => frame.local(end) - start,
        None => parse_duration(end).ok_or_else(|| prop.invalid(item, reason))?,
    };
    if span < TimeDelta::zero() {
        return Err(prop.invalid(item, "the PERIOD ends before it starts"));
    }
    Ok((start, span))
}

/// Local starts of the occurrences the `RRULE`s generate up to
/// [`EXPANSION_END`].
fn expand_rules(
    rules: Vec<RuleSpec>,
    frame: Frame,
    start: NaiveDateTime,
) -> Result<Vec<NaiveDateTime>> {
    let Some(first) = rules.first() else {
        return Ok(Vec::new());
    };
    let (first_text, first_line) = (first.text.clone(), first.line);
    let dt_start = frame.zone.rule_time(start);
    let mut set = RRuleSet::new(dt_start);
    for spec in rules {
        set = set.rrule(spec.validate(frame, dt_start)?);
    }
    let horizon = frame.zone.rule_time(EXPANSION_END.and_time(LAST_SECOND));
    let result = set.before(horizon).all(MAX_OCCURRENCES_PER_EVENT);
    if result.limited && result.dates.len() >= usize::from(MAX_OCCURRENCES_PER_EVENT) {
        return Err(Error::TooManyOccurrences {
            line: first_line,
            value: first_text,
            limit: MAX_OCCURRENCES_PER_EVENT,
        });
    }
    Ok(result.dates.iter().map(DateTime::naive_local).collect())
}

/// Removes the occurrences that `RECURRENCE-ID` events replace from the
/// master events sharing their `UID`.
fn apply_overrides(events: &mut [Event]) {
    let mut replaced: HashMap<String, Vec<Stamp>> = HashMap::new();
    for event in events.iter() {
        if let (Some(uid), Some(stamp)) = (&event.uid, event.recurrence_id) {
            replaced.entry(uid.clone()).or_default().push(stamp);
        }
    }
    for event in events
        .iter_mut()
        .filter(|event| event.recurrence_id.is_none())
    {
        let Some(stamps) = event.uid.as_ref().and_then(|uid| replaced.get(uid)) else {
            continue;
        };
        for &stamp in stamps {
            event.exclusions.insert(event.frame, stamp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a date; test inputs are known to be valid.
    fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
    }

    /// Wraps `body` lines in a VCALENDAR, separated by CRLF. The first body
    /// line is line 4.
    fn calendar(body: &[&str]) -> String {
        let mut lines = vec![
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//curfew//test//EN",
        ];
        lines.extend_from_slice(body);
        lines.push("END:VCALENDAR");
        lines.join("\r\n") + "\r\n"
    }

    /// Wraps property lines in one VEVENT inside a VCALENDAR. `BEGIN:VEVENT`
    /// is line 4, the first property line 5.
    fn event(properties: &[&str]) -> String {
        let mut body = vec!["BEGIN:VEVENT", "UID:test@curfew"];
        body.extend_from_slice(properties);
        body.push("END:VEVENT");
        let mut lines = vec![
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//curfew//test//EN",
        ];
        lines.extend(body);
        lines.push("END:VCALENDAR");
        lines.join("\r\n")
    }

    /// Parses text that must be valid.
    fn parse(text: &str) -> HolidaySet {
        match HolidaySet::parse_ics(text) {
            Ok(set) => set,
            Err(error) => panic!("calendar should parse, got: {error}"),
        }
    }

    /// Parses text that must be rejected, returning the message.
    fn parse_error(text: &str) -> Error {
        match HolidaySet::parse_ics(text) {
            Ok(set) => panic!("calendar should be rejected, got {:?}", set.days()),
            Err(error) => error,
        }
    }

    #[test]
    fn from_dates_sorts_and_deduplicates() {
        let set = HolidaySet::from_dates([day(2026, 12, 25), day(2026, 1, 1), day(2026, 12, 25)]);
        assert_eq!(set.days(), [day(2026, 1, 1), day(2026, 12, 25)]);
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert!(set.contains(day(2026, 12, 25)));
        assert!(!set.contains(day(2026, 12, 24)));
    }

    #[test]
    fn extend_forms_the_union_of_both_sets() {
        let mut set = HolidaySet::from_dates([day(2026, 1, 1), day(2026, 5, 1)]);
        set.extend(&HolidaySet::from_dates([
            day(2026, 5, 1),
            day(2026, 3, 3),
            day(2027, 1, 1),
        ]));
        assert_eq!(
            set.days(),
            [
                day(2026, 1, 1),
                day(2026, 3, 3),
                day(2026, 5, 1),
                day(2027, 1, 1)
            ]
        );
    }

    #[test]
    fn next_on_or_after_finds_the_same_or_a_later_day() {
        let set = HolidaySet::from_dates([day(2026, 1, 1), day(2026, 12, 25)]);
        assert_eq!(set.next_on_or_after(day(2026, 1, 1)), Some(day(2026, 1, 1)));
        assert_eq!(
            set.next_on_or_after(day(2026, 1, 2)),
            Some(day(2026, 12, 25))
        );
        assert_eq!(set.next_on_or_after(day(2026, 12, 26)), None);
        assert_eq!(
            HolidaySet::default().next_on_or_after(day(2026, 1, 1)),
            None
        );
    }

    #[test]
    fn all_day_event_without_end_covers_one_day() {
        let set = parse(&event(&["DTSTART;VALUE=DATE:20261224"]));
        assert_eq!(set.days(), [day(2026, 12, 24)]);
    }

    #[test]
    fn all_day_event_end_date_is_exclusive() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20261224",
            "DTEND;VALUE=DATE:20261227",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 12, 24), day(2026, 12, 25), day(2026, 12, 26)]
        );
    }

    #[test]
    fn all_day_event_duration_counts_days() {
        let set = parse(&event(&["DTSTART;VALUE=DATE:20261224", "DURATION:P3D"]));
        assert_eq!(
            set.days(),
            [day(2026, 12, 24), day(2026, 12, 25), day(2026, 12, 26)]
        );
    }

    #[test]
    fn timed_utc_event_covers_its_utc_day() {
        let set = parse(&event(&[
            "DTSTART:20261224T120000Z",
            "DTEND:20261224T180000Z",
        ]));
        assert_eq!(set.days(), [day(2026, 12, 24)]);
    }

    #[test]
    fn timed_event_with_tzid_spanning_midnight_covers_both_local_days() {
        let set = parse(&event(&[
            "DTSTART;TZID=Europe/Berlin:20261224T220000",
            "DTEND;TZID=Europe/Berlin:20261225T020000",
        ]));
        assert_eq!(set.days(), [day(2026, 12, 24), day(2026, 12, 25)]);
    }

    #[test]
    fn timed_event_with_tzid_uses_the_local_not_the_utc_date() {
        // 20:00-23:00 in New York is 01:00-04:00 UTC on the 25th.
        let set = parse(&event(&[
            "DTSTART;TZID=America/New_York:20261224T200000",
            "DTEND;TZID=America/New_York:20261224T230000",
        ]));
        assert_eq!(set.days(), [day(2026, 12, 24)]);
    }

    #[test]
    fn timed_event_ending_at_midnight_does_not_cover_the_next_day() {
        let set = parse(&event(&[
            "DTSTART:20261224T080000",
            "DTEND:20261225T000000",
        ]));
        assert_eq!(set.days(), [day(2026, 12, 24)]);
    }

    #[test]
    fn floating_event_without_end_covers_its_written_date() {
        let set = parse(&event(&["DTSTART:20261231T233000"]));
        assert_eq!(set.days(), [day(2026, 12, 31)]);
    }

    #[test]
    fn yearly_rule_by_month_and_month_day_repeats_new_year_until_2100() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260101",
            "RRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1",
        ]));
        assert_eq!(set.len(), 75);
        assert_eq!(set.days().first(), Some(&day(2026, 1, 1)));
        assert!(set.contains(day(2027, 1, 1)));
        assert!(set.contains(day(2064, 1, 1)));
        assert_eq!(set.days().last(), Some(&day(2100, 1, 1)));
    }

    #[test]
    fn yearly_rule_on_fourth_thursday_of_november_finds_thanksgiving() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20261126",
            "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=3",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 11, 26), day(2027, 11, 25), day(2028, 11, 23)]
        );
    }

    #[test]
    fn yearly_rule_with_count_stops_after_count() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260501",
            "RRULE:FREQ=YEARLY;COUNT=2",
        ]));
        assert_eq!(set.days(), [day(2026, 5, 1), day(2027, 5, 1)]);
    }

    #[test]
    fn monthly_rule_on_first_monday_repeats_each_month() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260105",
            "RRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=4",
        ]));
        assert_eq!(
            set.days(),
            [
                day(2026, 1, 5),
                day(2026, 2, 2),
                day(2026, 3, 2),
                day(2026, 4, 6)
            ]
        );
    }

    #[test]
    fn monthly_rule_on_last_monday_with_interval_skips_months() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260126",
            "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=-1MO;COUNT=3",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 1, 26), day(2026, 3, 30), day(2026, 5, 25)]
        );
    }

    #[test]
    fn weekly_rule_with_count_stops_after_count() {
        let set = parse(&event(&[
            "DTSTART:20260105T090000Z",
            "DTEND:20260105T170000Z",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,FR;COUNT=3",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 1, 5), day(2026, 1, 9), day(2026, 1, 12)]
        );
    }

    #[test]
    fn weekly_rule_with_until_date_includes_the_until_day() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260103",
            "RRULE:FREQ=WEEKLY;UNTIL=20260117",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 1, 3), day(2026, 1, 10), day(2026, 1, 17)]
        );
    }

    #[test]
    fn weekly_rule_with_tzid_and_utc_until_keeps_local_days_across_dst() {
        // 23:30 Berlin is 22:30 UTC in winter and 21:30 UTC in summer.
        let set = parse(&event(&[
            "DTSTART;TZID=Europe/Berlin:20260321T233000",
            "RRULE:FREQ=WEEKLY;UNTIL=20260404T213000Z",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 3, 21), day(2026, 3, 28), day(2026, 4, 4)]
        );
    }

    #[test]
    fn exdate_removes_listed_occurrences() {
        let set = parse(&event(&[
            "DTSTART;TZID=Europe/Berlin:20260105T100000",
            "RRULE:FREQ=WEEKLY;COUNT=5",
            "EXDATE;TZID=Europe/Berlin:20260112T100000",
            "EXDATE;VALUE=DATE:20260126,20260202",
        ]));
        assert_eq!(set.days(), [day(2026, 1, 5), day(2026, 1, 19)]);
    }

    #[test]
    fn multi_day_event_repeats_as_a_whole() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20261224",
            "DTEND;VALUE=DATE:20261227",
            "RRULE:FREQ=YEARLY;COUNT=2",
        ]));
        assert_eq!(
            set.days(),
            [
                day(2026, 12, 24),
                day(2026, 12, 25),
                day(2026, 12, 26),
                day(2027, 12, 24),
                day(2027, 12, 25),
                day(2027, 12, 26),
            ]
        );
    }

    #[test]
    fn unbounded_weekly_rule_from_1900_stops_at_the_end_of_2100() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:19000101",
            "RRULE:FREQ=WEEKLY",
        ]));
        assert_eq!(set.days().first(), Some(&day(1900, 1, 1)));
        assert_eq!(set.days().last(), Some(&day(2100, 12, 27)));
        assert_eq!(set.len(), 10_488);
    }

    #[test]
    fn daily_rule_from_1900_exceeds_the_occurrence_cap() {
        let error = parse_error(&event(&["DTSTART;VALUE=DATE:19000101", "RRULE:FREQ=DAILY"]));
        assert!(
            matches!(error, Error::TooManyOccurrences { line: Some(7), .. }),
            "{error}"
        );
    }

    #[test]
    fn recurrence_id_moves_one_occurrence() {
        let text = calendar(&[
            "BEGIN:VEVENT",
            "UID:team-day",
            "DTSTART;VALUE=DATE:20260105",
            "RRULE:FREQ=WEEKLY;COUNT=3",
            "END:VEVENT",
            "BEGIN:VEVENT",
            "UID:team-day",
            "RECURRENCE-ID;VALUE=DATE:20260112",
            "DTSTART;VALUE=DATE:20260114",
            "END:VEVENT",
        ]);
        assert_eq!(
            parse(&text).days(),
            [day(2026, 1, 5), day(2026, 1, 14), day(2026, 1, 19)]
        );
    }

    #[test]
    fn cancelled_events_cover_nothing() {
        let set = parse(&event(&["DTSTART;VALUE=DATE:20261224", "STATUS:CANCELLED"]));
        assert!(set.is_empty());
    }

    #[test]
    fn rdate_adds_occurrences() {
        let set = parse(&event(&[
            "DTSTART;VALUE=DATE:20260101",
            "RDATE;VALUE=DATE:20260406,20260525",
        ]));
        assert_eq!(
            set.days(),
            [day(2026, 1, 1), day(2026, 4, 6), day(2026, 5, 25)]
        );
    }

    #[test]
    fn other_components_and_unknown_properties_are_ignored() {
        let text = calendar(&[
            "BEGIN:VTIMEZONE",
            "TZID:Europe/Berlin",
            "END:VTIMEZONE",
            "BEGIN:VTODO",
            "DTSTART;VALUE=DATE:20260301",
            "END:VTODO",
            "BEGIN:VEVENT",
            "X-CURFEW-NOTE;X-PARAM=\"a:b\":whatever",
            "DTSTART;VALUE=DATE:20260302",
            "BEGIN:VALARM",
            "TRIGGER:-PT15M",
            "END:VALARM",
            "END:VEVENT",
        ]);
        assert_eq!(parse(&text).days(), [day(2026, 3, 2)]);
    }

    #[test]
    fn calendar_without_events_is_empty() {
        assert!(parse(&calendar(&[])).is_empty());
    }

    #[test]
    fn crlf_and_folded_lines_are_unfolded() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Christmas\r\n  holidays\r\n\
                    DTSTART;VALUE=DATE:2026\r\n 1224\r\nRRULE:FREQ=YEARLY;\r\n\tCOUNT=2\r\n\
                    DTEND;VALUE=DATE:20261226\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(
            parse(text).days(),
            [
                day(2026, 12, 24),
                day(2026, 12, 25),
                day(2027, 12, 24),
                day(2027, 12, 25)
            ]
        );
    }

    #[test]
    fn error_lines_count_physical_lines_of_folded_text() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:a long\n  summary\nDTSTART;VALUE=DATE:2026\n 1301\nEND:VEVENT\nEND:VCALENDAR\n";
        let error = parse_error(text);
        assert_eq!(error.line(), Some(5));
        assert_eq!(
            error.to_string(),
            "line 5: invalid DTSTART value `20261301`: expected a DATE (YYYYMMDD) or DATE-TIME \
             (YYYYMMDDTHHMMSS, optionally ending in Z)"
        );
    }

    #[test]
    fn unknown_tzid_is_an_error_naming_the_zone() {
        let error = parse_error(&event(&["DTSTART;TZID=Mars/Olympus_Mons:20261224T120000"]));
        assert_eq!(
            error.to_string(),
            "line 6: DTSTART: unknown time zone TZID=Mars/Olympus_Mons"
        );
    }

    #[test]
    fn missing_dtstart_is_an_error_pointing_at_the_event() {
        let error = parse_error(&event(&["SUMMARY:No start"]));
        assert_eq!(error.to_string(), "line 4: VEVENT has no DTSTART property");
    }

    #[test]
    fn bad_rrule_is_an_error_naming_the_rule() {
        let error = parse_error(&event(&[
            "DTSTART;VALUE=DATE:20260101",
            "RRULE:FREQ=SOMETIMES",
        ]));
        assert!(
            matches!(error, Error::InvalidRule { line: Some(7), .. }),
            "{error}"
        );
        assert!(error.to_string().contains("FREQ=SOMETIMES"), "{error}");
    }

    #[test]
    fn rule_parts_the_engine_would_misread_are_errors() {
        for (rule, reason) in [
            ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL must be at least 1"),
            ("FREQ=YEARLY;COUNT=0", "COUNT must be at least 1"),
            ("FREQ=WEEKLY;BYDAY=4TH", "BYDAY with an ordinal"),
        ] {
            let rrule = format!("RRULE:{rule}");
            let error = parse_error(&event(&["DTSTART;VALUE=DATE:20260101", &rrule]));
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("line 7: invalid RRULE value `{rule}`: {reason}")),
                "{message}"
            );
        }
    }

    #[test]
    fn concatenated_calendars_are_all_read() {
        let first = event(&["DTSTART;VALUE=DATE:20260101"]);
        let second = event(&["DTSTART;VALUE=DATE:20261225"]);
        let set = parse(&format!("{first}\r\n{second}"));
        assert_eq!(set.days(), [day(2026, 1, 1), day(2026, 12, 25)]);
    }

    #[test]
    fn bad_until_is_an_error_naming_until() {
        let error = parse_error(&event(&[
            "DTSTART;VALUE=DATE:20260101",
            "RRULE:FREQ=WEEKLY;UNTIL=2026-01-31",
        ]));
        assert!(
            error
                .to_string()
                .starts_with("line 7: invalid UNTIL value `2026-01-31`"),
            "{error}"
        );
    }

    #[test]
    fn malformed_dates_and_durations_are_errors() {
        let bad_end = parse_error(&event(&[
            "DTSTART;VALUE=DATE:20260101",
            "DTEND;VALUE=DATE:2026011",
        ]));
        assert!(
            bad_end
                .to_string()
                .starts_with("line 7: invalid DTEND value `2026011`"),
            "{bad_end}"
        );
        let backwards = parse_error(&event(&[
            "DTSTART:20260101T100000Z",
            "DTEND:20260101T090000Z",
        ]));
        assert!(
            backwards.to_string().contains("DTEND is before DTSTART"),
            "{backwards}"
        );
        let negative = parse_error(&event(&["DTSTART;VALUE=DATE:20260101", "DURATION:-P1D"]));
        assert!(
            negative
                .to_string()
                .starts_with("line 7: invalid DURATION value `-P1D`"),
            "{negative}"
        );
        let bad_exdate = parse_error(&event(&["DTSTART;VALUE=DATE:20260101", "EXDATE:20260108,"]));
        assert!(
            bad_exdate
                .to_string()
                .starts_with("line 7: invalid EXDATE value ``"),
            "{bad_exdate}"
        );
    }

    #[test]
    fn garbage_text_is_an_error() {
        let error = parse_error("this is not a calendar\n");
        assert_eq!(error.line(), Some(1));
        let html = parse_error("<html><body>404</body></html>");
        assert!(matches!(html, Error::Syntax { .. }), "{html}");
        assert!(matches!(parse_error(""), Error::Syntax { line: None, .. }));
    }

    #[test]
    fn unbalanced_blocks_are_errors() {
        let unclosed = parse_error(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nEND:VCALENDAR\n",
        );
        assert_eq!(
            unclosed.to_string(),
            "line 4: malformed iCalendar: END:VCALENDAR does not match BEGIN:VEVENT on line 2"
        );
        let truncated = parse_error("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\n");
        assert_eq!(truncated.line(), Some(2));
    }

    #[test]
    fn durations_parse_weeks_days_and_times() {
        assert_eq!(parse_duration("P2W"), Some(TimeDelta::days(14)));
        assert_eq!(parse_duration("P1DT12H"), Some(TimeDelta::hours(36)));
        assert_eq!(parse_duration("PT8H30M"), Some(TimeDelta::minutes(510)));
        assert_eq!(parse_duration("+PT15S"), Some(TimeDelta::seconds(15)));
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("P1"), None);
        assert_eq!(parse_duration("P1Y"), None);
        assert_eq!(parse_duration("-P1D"), None);
    }
}
