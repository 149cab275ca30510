//! Uptime and downtime spec strings, compatible with kube-downscaler.
//!
//! A spec is a comma-separated list of items, OR'd together:
//!
//! * `Mon-Fri 07:30-20:30 Europe/Berlin`: a weekly window; the zone is optional, day ranges may
//!   wrap (`Sat-Mon`), day lists use commas (`Mon,Wed,Fri 09:00-17:00`), `24:00` is a valid end,
//!   and a window whose end is at or before its start runs overnight into the next day;
//! * `always` and `never`;
//! * `2026-12-24T00:00:00+01:00-2027-01-02T07:00:00+01:00`: an absolute range, start inclusive and
//!   end exclusive.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};

use super::Zone;

/// What can be wrong with a spec string; each variant names the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The spec has no items at all.
    #[error("empty spec: expected a window such as 'Mon-Fri 07:00-20:00', 'always' or 'never'")]
    Empty,
    /// A day name that is not one of Mon..Sun.
    #[error("unknown day name '{0}' (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)")]
    UnknownDay(String),
    /// A clock time that is malformed or out of range.
    #[error("bad time '{token}': {reason}")]
    BadTime {
        /// The offending token.
        token: String,
        /// Why it is wrong.
        reason: &'static str,
    },
    /// A time zone name that is unknown, or a fixed offset that reads like regional time.
    #[error("{0}")]
    Zone(#[from] super::zone::Error),
    /// Days without a time range after them.
    #[error("days '{0}' have no time range (expected e.g. '{0} 07:00-20:00')")]
    MissingTimeRange(String),
    /// A token that fits nowhere in the grammar.
    #[error("unexpected '{token}' in '{item}'")]
    Unexpected {
        /// The offending token.
        token: String,
        /// The whole item it appeared in.
        item: String,
    },
    /// An absolute range whose instants do not parse.
    #[error("bad absolute range '{0}': expected RFC 3339 instants 'START-END' with offsets or Z")]
    BadAbsolute(String),
    /// An absolute range that ends before it starts.
    #[error("absolute range '{0}' ends before it starts")]
    EmptyAbsolute(String),
}

/// Result type of spec parsing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A set of weekdays; bit 0 is Monday, bit 6 is Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DaySet(u8);

// === impl DaySet ===

impl DaySet {
    /// Every day of the week.
    pub const ALL: DaySet = DaySet(0x7f);

    /// The set holding exactly the given day (0 = Monday).
    pub fn single(day: u8) -> Self {
        DaySet(1 << (day % 7))
    }

    /// Builds a set from its bit mask (bit 0 = Monday); bits above Sunday are dropped.
    pub fn from_bits(bits: u8) -> Self {
        DaySet(bits & 0x7f)
    }

    /// The bit mask of this set.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether `day` (0 = Monday) is in the set.
    pub fn contains(self, day: u8) -> bool {
        self.0 & (1 << (day % 7)) != 0
    }

    /// Whether the set holds no day.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The days of the week from `first` to `last` inclusive, wrapping past Sunday.
    pub fn range(first: u8, last: u8) -> Self {
        let mut set = DaySet(0);
        let mut day = first % 7;
        loop {
            set.0 |= 1 << day;
            if day == last % 7 {
                return set;
            }
            day = (day + 1) % 7;
        }
    }

    fn union(self, other: DaySet) -> DaySet {
        DaySet(self.0 | other.0)
    }

    /// Parses `Mon`, `Mon-Fri`, `Sat-Mon`, or a comma list of those.
    fn parse(token: &str) -> Result<DaySet> {
        token.split(',').try_fold(DaySet(0), |set, part| {
            let part = part.trim();
            let days = match part.split_once('-') {
                Some((first, last)) => DaySet::range(parse_day(first)?, parse_day(last)?),
                None => DaySet::single(parse_day(part)?),
            };
            Ok(set.union(days))
        })
    }

    /// The set as maximal runs around the week, each `(first, last)`.
    fn runs(self) -> Vec<(u8, u8)> {
        if self.0 == 0x7f {
            return vec![(0, 6)];
        }
        // Start scanning just after a day that is not in the set, so no run is split.
        let Some(gap) = (0..7).find(|&d| !self.contains(d)) else {
            return Vec::new();
        };
        let mut runs = Vec::new();
        let mut current: Option<(u8, u8)> = None;
        for offset in 1..=7 {
            let day = (gap + offset) % 7;
            match (self.contains(day), current) {
                (true, None) => current = Some((day, day)),
                (true, Some((first, _))) => current = Some((first, day)),
                (false, Some(run)) => {
                    runs.push(run);
                    current = None;
                }
                (false, None) => {}
            }
        }
        runs.extend(current);
        runs
    }
}

impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .runs()
            .into_iter()
            .map(|(first, last)| match (first, last) {
                (a, b) if a == b => DAY_NAMES[a as usize].to_string(),
                (a, b) => format!("{}-{}", DAY_NAMES[a as usize], DAY_NAMES[b as usize]),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn parse_day(token: &str) -> Result<u8> {
    let token = token.trim();
    DAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token))
        .map(|index| index as u8)
        .ok_or_else(|| Error::UnknownDay(token.to_string()))
}

/// A wall-clock time of day in minutes since midnight, `0..=1440` (1440 is `24:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

// === impl ClockTime ===

impl ClockTime {
    /// Midnight at the start of the day.
    pub const MIDNIGHT: ClockTime = ClockTime(0);
    /// Midnight at the end of the day (`24:00`).
    pub const END_OF_DAY: ClockTime = ClockTime(1440);

    /// A clock time from hours and minutes; `None` when out of range.
    pub fn new(hours: u16, minutes: u16) -> Option<Self> {
        let total = hours.checked_mul(60)?.checked_add(minutes)?;
        (minutes < 60 && total <= 1440).then_some(ClockTime(total))
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    fn parse(token: &str) -> Result<ClockTime> {
        let bad = |reason| Error::BadTime {
            token: token.to_string(),
            reason,
        };
        let (hours, minutes) = token.split_once(':').ok_or_else(|| bad("expected HH:MM"))?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(hours) || minutes.len() != 2 || !digits(minutes) {
            return Err(bad("expected HH:MM"));
        }
        let hours: u16 = hours.parse().map_err(|_| bad("expected HH:MM"))?;
        let minutes: u16 = minutes.parse().map_err(|_| bad("expected HH:MM"))?;
        if minutes > 59 {
            return Err(bad("minutes must be 00-59"));
        }
        if hours > 24 || (hours == 24 && minutes > 0) {
            return Err(bad("hours must be 00-23 (or 24:00 as an end)"));
        }
        Ok(ClockTime(hours * 60 + minutes))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A weekly window: on each of `days`, from `start` until `end` (overnight when `end <= start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The days on which the window starts.
    pub days: DaySet,
    /// Local start time.
    pub start: ClockTime,
    /// Local end time; at or before `start` means the next day.
    pub end: ClockTime,
    /// The window's own zone; `None` takes the schedule's.
    pub zone: Option<Zone>,
}

impl Window {
    /// Whether the window ends on the day after it starts.
    pub fn is_overnight(&self) -> bool {
        self.end <= self.start
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}-{}", self.days, self.start, self.end)?;
        if let Some(zone) = self.zone {
            write!(f, " {}", zone.name())?;
        }
        Ok(())
    }
}

/// An absolute range of instants, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteRange {
    /// First instant inside the range.
    pub from: DateTime<FixedOffset>,
    /// First instant after the range.
    pub to: DateTime<FixedOffset>,
}

impl AbsoluteRange {
    /// Parses `START-END` where both are RFC 3339 instants.
    pub fn parse(token: &str) -> Result<AbsoluteRange> {
        let token = token.trim();
        let split = token
            .match_indices('-')
            .map(|(index, _)| index)
            .find_map(|index| {
                let from = DateTime::parse_from_rfc3339(&token[..index]).ok()?;
                let to = DateTime::parse_from_rfc3339(&token[index + 1..]).ok()?;
                Some((from, to))
            });
        let (from, to) = split.ok_or_else(|| Error::BadAbsolute(token.to_string()))?;
        if to <= from {
            return Err(Error::EmptyAbsolute(token.to_string()));
        }
        Ok(AbsoluteRange { from, to })
    }
}

impl fmt::Display for AbsoluteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from.to_rfc3339(), self.to.to_rfc3339())
    }
}

/// One item of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecItem {
    /// Matches every instant.
    Always,
    /// Matches no instant.
    Never,
    /// A weekly window.
    Weekly(Window),
    /// An absolute range.
    Absolute(AbsoluteRange),
}

impl fmt::Display for SpecItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecItem::Always => f.write_str("always"),
            SpecItem::Never => f.write_str("never"),
            SpecItem::Weekly(window) => window.fmt(f),
            SpecItem::Absolute(range) => range.fmt(f),
        }
    }
}

/// A parsed spec string: its items, OR'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The items in the order written.
    pub items: Vec<SpecItem>,
}

// === impl Spec ===

impl FromStr for Spec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Spec> {
        let mut items = Vec::new();
        // Day lists use commas too: pieces that hold only days wait for the piece with the times.
        let mut pending_days: Vec<&str> = Vec::new();
        for piece in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if is_days_only(piece) {
                pending_days.push(piece);
                continue;
            }
            items.push(parse_item(piece, &pending_days)?);
            pending_days.clear();
        }
        if !pending_days.is_empty() {
            return Err(Error::MissingTimeRange(pending_days.join(",")));
        }
        if items.is_empty() {
            return Err(Error::Empty);
        }
        Ok(Spec { items })
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, item) in self.items.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}

/// Whether a comma piece is a bare day or day range that belongs to the next piece.
fn is_days_only(piece: &str) -> bool {
    !piece.contains(char::is_whitespace)
        && !piece.contains(':')
        && !piece.eq_ignore_ascii_case("always")
        && !piece.eq_ignore_ascii_case("never")
}

fn parse_item(piece: &str, leading_days: &[&str]) -> Result<SpecItem> {
    if leading_days.is_empty() {
        if piece.eq_ignore_ascii_case("always") {
            return Ok(SpecItem::Always);
        }
        if piece.eq_ignore_ascii_case("never") {
            return Ok(SpecItem::Never);
        }
        if looks_absolute(piece) {
            return AbsoluteRange::parse(piece).map(SpecItem::Absolute);
        }
    }
    parse_window(piece, leading_days).map(SpecItem::Weekly)
}

/// An absolute range starts with a date (`2026-`), a window with a day name.
fn looks_absolute(piece: &str) -> bool {
    piece.len() > 4 && piece.as_bytes()[..4].iter().all(u8::is_ascii_digit)
}

fn parse_window(piece: &str, leading_days: &[&str]) -> Result<Window> {
    let mut tokens = piece.split_whitespace();
    let unexpected = |token: &str| Error::Unexpected {
        token: token.to_string(),
        item: piece.to_string(),
    };
    let day_token = tokens.next().ok_or(Error::Empty)?;
    let mut days = DaySet::parse(day_token)?;
    for extra in leading_days {
        days = days.union(DaySet::parse(extra)?);
    }
    let times = tokens
        .next()
        .ok_or_else(|| Error::MissingTimeRange(day_token.to_string()))?;
    let (start, end) = times.split_once('-').ok_or_else(|| Error::BadTime {
        token: times.to_string(),
        reason: "expected a range HH:MM-HH:MM",
    })?;
    let start = ClockTime::parse(start)?;
    if start == ClockTime::END_OF_DAY {
        return Err(Error::BadTime {
            token: times.to_string(),
            reason: "24:00 is only valid as an end",
        });
    }
    let end = ClockTime::parse(end)?;
    let zone = tokens.next().map(parse_zone).transpose()?;
    if let Some(extra) = tokens.next() {
        return Err(unexpected(extra));
    }
    Ok(Window {
        days,
        start,
        end,
        zone,
    })
}

/// Parses an IANA zone name (see [`Zone::named`]).
pub fn parse_zone(token: &str) -> Result<Zone> {
    Zone::named(token).map_err(Error::Zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn window(text: &str) -> Window {
        match spec(text).items.as_slice() {
            [SpecItem::Weekly(window)] => *window,
            other => panic!("not one window: {other:?}"),
        }
    }

    #[test]
    fn kube_downscaler_window_with_zone_parses() {
        let w = window("Mon-Fri 07:30-20:30 Europe/Berlin");
        assert_eq!(w.days, DaySet::range(0, 4));
        assert_eq!(w.start, ClockTime::new(7, 30).unwrap());
        assert_eq!(w.end, ClockTime::new(20, 30).unwrap());
        assert_eq!(w.zone, Some(chrono_tz::Europe::Berlin.into()));
    }

    #[test]
    fn wrapping_day_range_covers_the_weekend() {
        let w = window("Sat-Mon 00:00-24:00");
        assert_eq!(w.days.bits(), 0b110_0001);
        assert_eq!(w.end, ClockTime::END_OF_DAY);
    }

    #[test]
    fn day_list_uses_commas_and_still_separates_items() {
        let s = spec("Mon,Wed,Fri 09:00-17:00, Sat 10:00-12:00");
        assert_eq!(s.items.len(), 2);
        let SpecItem::Weekly(first) = s.items[0] else {
            panic!()
        };
        assert_eq!(first.days.bits(), 0b1_0101);
    }

    #[test]
    fn end_at_or_before_start_runs_overnight() {
        assert!(window("Fri 22:00-06:00").is_overnight());
        assert!(window("Mon 07:00-07:00").is_overnight());
        assert!(!window("Mon 07:00-24:00").is_overnight());
    }

    #[test]
    fn always_never_and_absolute_ranges_parse() {
        let s = spec("always, never, 2026-12-24T00:00:00+01:00-2027-01-02T07:00:00Z");
        assert_eq!(s.items[0], SpecItem::Always);
        assert_eq!(s.items[1], SpecItem::Never);
        let SpecItem::Absolute(range) = s.items[2] else {
            panic!()
        };
        assert_eq!(range.to.to_rfc3339(), "2027-01-02T07:00:00+00:00");
    }

    #[test]
    fn hour_25_is_an_error_naming_the_token() {
        let err = "Mon-Fri 07:00-25:00".parse::<Spec>().unwrap_err();
        assert!(err.to_string().contains("'25:00'"), "{err}");
    }

    #[test]
    fn minute_61_is_an_error_naming_the_token() {
        let err = "Mon-Fri 07:61-20:00".parse::<Spec>().unwrap_err();
        assert!(err.to_string().contains("'07:61'"), "{err}");
    }

    #[test]
    fn unknown_day_is_an_error_naming_the_day() {
        let err = "Mon-Fry 07:00-20:00".parse::<Spec>().unwrap_err();
        assert_eq!(err, Error::UnknownDay("Fry".into()));
    }

    #[test]
    fn unknown_zone_is_an_error_naming_the_zone() {
        let err = "Mon-Fri 07:00-20:00 Europe/Berln"
            .parse::<Spec>()
            .unwrap_err();
        assert_eq!(
            err,
            Error::Zone(super::super::zone::Error::Unknown("Europe/Berln".into()))
        );
    }

    #[test]
    fn days_without_times_are_an_error() {
        let err = "Mon,Tue".parse::<Spec>().unwrap_err();
        assert_eq!(err, Error::MissingTimeRange("Mon,Tue".into()));
    }

    #[test]
    fn absolute_range_that_ends_before_it_starts_is_an_error() {
        let err = "2027-01-01T00:00:00Z-2026-01-01T00:00:00Z"
            .parse::<Spec>()
            .unwrap_err();
        assert!(matches!(err, Error::EmptyAbsolute(_)));
    }

    #[test]
    fn display_is_canonical() {
        let s = spec("mon-fri 7:30-20:30 Europe/Berlin,sat,sun 10:00-12:00");
        assert_eq!(
            s.to_string(),
            "Mon-Fri 07:30-20:30 Europe/Berlin, Sat-Sun 10:00-12:00"
        );
        assert_eq!(
            window("Sun,Mon,Sat 01:00-02:00").days.to_string(),
            "Sat-Mon"
        );
    }
}
