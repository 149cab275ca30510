//! [`Zone`]: a time zone whose rules come from the embedded chrono-tz data or from a TZif file
//! of the system's tz database, behind one [`chrono::TimeZone`] implementation.
//!
//! Which of the two a name resolves to is decided by the [`ZoneSource`] installed once per
//! process (the binary installs the system's tz database when it is newer than the embedded
//! data, see `zoneinfo`); without one, names resolve to the embedded data. The calendar itself
//! reads no files: a source hands it parsed zones. A `Zone` is `Copy` either way (parsed TZif
//! zones are interned), so schedules and windows hold it like a `chrono_tz::Tz`. Answering
//! "what is the offset at this instant" is pure: the rules are in memory.
//!
//! Some zone names look like regional time but are fixed offsets: `EST` is UTC-05:00 all
//! year, not US Eastern time. [`Zone::named`] refuses them with the zone people usually mean.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::{OffsetName, Tz, TzOffset};

/// Why a zone name was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither the system's tz database nor the embedded data knows the name.
    #[error("unknown time zone '{0}'")]
    Unknown(String),
    /// The name is a fixed offset that reads like regional time (`EST`).
    #[error(
        "'{name}' is a fixed offset (UTC{offset} all year, no daylight saving time), \
         not the regional time its name suggests"
    )]
    FixedOffsetLookalike {
        /// The name as written.
        name: String,
        /// Its offset, e.g. `-05:00`.
        offset: &'static str,
        /// The zone people usually mean by it.
        regional: &'static str,
    },
}

impl Error {
    /// What to write instead, where there is an obvious answer.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Unknown(_) => None,
            Error::FixedOffsetLookalike {
                regional, offset, ..
            } => Some(format!(
                "use '{regional}' for the local time there (with its daylight saving time, if \
                 any), or 'Etc/GMT{}' if a fixed UTC{offset} is really meant",
                etc_gmt_suffix(offset)
            )),
        }
    }
}

/// Zone names that are fixed offsets but read like regional time: name, offset, the zone
/// people mean. (`EST5EDT`, `CST6CDT`, `MST7MDT` and `PST8PDT` are not here: they follow US
/// daylight saving rules and are links to the regional zones since tz 2024b.)
const FIXED_OFFSET_LOOKALIKES: [(&str, &str, &str); 3] = [
    ("EST", "-05:00", "America/New_York"),
    ("MST", "-07:00", "America/Denver"),
    ("HST", "-10:00", "Pacific/Honolulu"),
];

/// `Etc/GMT` names count the other way round: UTC-05:00 is `Etc/GMT+5`.
fn etc_gmt_suffix(offset: &str) -> String {
    let hours = offset
        .get(1..3)
        .and_then(|h| h.parse::<u8>().ok())
        .unwrap_or(0);
    let sign = if offset.starts_with('-') { '+' } else { '-' };
    format!("{sign}{hours}")
}

/// Zone rules besides the embedded data, looked up by name: the system's tz database.
pub trait ZoneSource: Send + Sync {
    /// The zone called `name`, if this source has it.
    fn find(&self, name: &str) -> Option<&'static SystemZone>;
}

/// The source [`Zone::named`] prefers over the embedded data, once installed.
static SOURCE: OnceLock<&'static dyn ZoneSource> = OnceLock::new();

/// Makes `source` the rules [`Zone::named`] prefers over the embedded data (for names it has)
/// for the rest of the process. Only the first call counts; returns whether this one did.
/// Install it before compiling any schedule, so that every zone comes from one place.
pub fn install_source(source: &'static dyn ZoneSource) -> bool {
    SOURCE.set(source).is_ok()
}

/// A time zone: embedded chrono-tz rules, or rules read from the system's tz database.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// Rules compiled into the binary (chrono-tz).
    Embedded(Tz),
    /// Rules read from a TZif file of the system's tz database.
    System(&'static SystemZone),
}

// === impl Zone ===

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Embedded(Tz::UTC);

    /// The zone called `name`: from the installed [`ZoneSource`] when it has the name, else
    /// from the embedded data. Fixed-offset names that read like regional time (`EST`, `MST`,
    /// `HST`) are refused.
    pub fn named(name: &str) -> Result<Zone, Error> {
        if let Some((_, offset, regional)) = FIXED_OFFSET_LOOKALIKES
            .iter()
            .find(|(lookalike, _, _)| *lookalike == name)
        {
            return Err(Error::FixedOffsetLookalike {
                name: name.to_string(),
                offset,
                regional,
            });
        }
        if let Some(zone) = SOURCE.get().and_then(|source| source.find(name)) {
            return Ok(Zone::System(zone));
        }
        name.parse::<Tz>()
            .map(Zone::Embedded)
            .map_err(|_| Error::Unknown(name.to_string()))
    }

    /// The IANA name, e.g. `Europe/Berlin`.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Embedded(tz) => tz.name(),
            Zone::System(zone) => zone.name,
        }
    }
}

impl From<Tz> for Zone {
    fn from(tz: Tz) -> Zone {
        Zone::Embedded(tz)
    }
}

impl FromStr for Zone {
    type Err = Error;

    fn from_str(name: &str) -> Result<Zone, Error> {
        Zone::named(name)
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Embedded(tz) => write!(f, "{} (embedded)", tz.name()),
            Zone::System(zone) => write!(f, "{} (system)", zone.name),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        match offset {
            ZoneOffset::Embedded(offset) => Zone::Embedded(Tz::from_offset(offset)),
            ZoneOffset::System(offset) => Zone::System(offset.zone),
        }
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        match self {
            Zone::Embedded(tz) => tz
                .offset_from_local_datetime(local)
                .map(ZoneOffset::Embedded),
            Zone::System(zone) => zone.offset_from_local(local).map(ZoneOffset::System),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        match self {
            Zone::Embedded(tz) => ZoneOffset::Embedded(tz.offset_from_utc_datetime(utc)),
            Zone::System(zone) => ZoneOffset::System(zone.offset_at(utc)),
        }
    }
}

/// The offset of a [`Zone`] at some instant; displays as the zone's abbreviation (`CET`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ZoneOffset {
    /// An offset of embedded rules.
    Embedded(TzOffset),
    /// An offset of rules read from the system's tz database.
    System(SystemOffset),
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        match self {
            ZoneOffset::Embedded(offset) => offset.fix(),
            ZoneOffset::System(offset) => offset.fixed,
        }
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneOffset::Embedded(offset) => match offset.abbreviation() {
                Some(abbreviation) => f.write_str(abbreviation),
                None => write!(f, "{}", offset.fix()),
            },
            ZoneOffset::System(offset) => f.write_str(offset.abbreviation.as_str()),
        }
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} ({})", self.fix())
    }
}

/// A zone read from a TZif file: its name and its rules (transitions, and the TZ string that
/// continues them past the last one).
pub struct SystemZone {
    name: &'static str,
    rules: jiff::tz::TimeZone,
}

// === impl SystemZone ===

impl SystemZone {
    /// Parses TZif data (version 1 to 4) for the zone `name`. The name is leaked: zones live
    /// for the whole process, so a [`ZoneSource`] parses each zone once and keeps it.
    pub fn parse(name: &str, tzif: &[u8]) -> Result<SystemZone, jiff::Error> {
        Ok(SystemZone {
            rules: jiff::tz::TimeZone::tzif(name, tzif)?,
            name: Box::leak(name.to_string().into_boxed_str()),
        })
    }

    /// The zone's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The offset in force at the UTC date-time `utc`.
    fn offset_at(&'static self, utc: &NaiveDateTime) -> SystemOffset {
        let seconds = utc.and_utc().timestamp().clamp(
            jiff::Timestamp::MIN.as_second(),
            jiff::Timestamp::MAX.as_second(),
        );
        let timestamp =
            jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let info = self.rules.to_offset_info(timestamp);
        SystemOffset {
            zone: self,
            fixed: fixed(info.offset().seconds()),
            abbreviation: Abbreviation::new(info.abbreviation()),
        }
    }

    /// The offsets a local date-time can have: one, two in a repeated hour, none in a gap.
    fn offset_from_local(&'static self, local: &NaiveDateTime) -> MappedLocalTime<SystemOffset> {
        use jiff::tz::AmbiguousOffset;

        let at = |offset: jiff::tz::Offset| {
            let utc = local
                .checked_sub_signed(chrono::TimeDelta::seconds(i64::from(offset.seconds())))
                .unwrap_or(*local);
            self.offset_at(&utc)
        };
        match self.rules.to_ambiguous_timestamp(civil(local)).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(at(offset)),
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(at(before), at(after))
            }
        }
    }
}

impl PartialEq for SystemZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for SystemZone {}

impl std::hash::Hash for SystemZone {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for SystemZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemZone")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A chrono local date-time as a jiff civil one, to the second (offsets change on whole
/// seconds), clamped to the years jiff represents.
fn civil(local: &NaiveDateTime) -> jiff::civil::DateTime {
    use chrono::{Datelike, Timelike};

    let clamped = (*local).clamp(
        NaiveDate::from_ymd_opt(-9999, 1, 1)
            .unwrap_or(NaiveDate::MIN)
            .and_time(NaiveTime::MIN),
        NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap_or(NaiveDate::MAX)
            .and_hms_opt(23, 59, 59)
            .unwrap_or(NaiveDateTime::MAX),
    );
    // Every field is in range after the clamp; the casts cannot truncate.
    jiff::civil::DateTime::new(
        clamped.year() as i16,
        clamped.month() as i8,
        clamped.day() as i8,
        clamped.hour() as i8,
        clamped.minute() as i8,
        clamped.second().min(59) as i8,
        0,
    )
    .unwrap_or(jiff::civil::DateTime::ZERO)
}

/// A UTC offset in seconds as a chrono offset (TZif offsets are within a day).
fn fixed(seconds: i32) -> FixedOffset {
    FixedOffset::east_opt(seconds).unwrap_or_else(|| Offset::fix(&chrono::Utc))
}

/// An offset of a [`SystemZone`]: the zone, the offset and its abbreviation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SystemOffset {
    zone: &'static SystemZone,
    fixed: FixedOffset,
    abbreviation: Abbreviation,
}

/// A zone abbreviation (`CET`, `+00`) kept inline, so offsets stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Abbreviation {
    bytes: [u8; Abbreviation::CAPACITY],
    len: u8,
}

impl Abbreviation {
    /// TZif abbreviations are at most 6 characters in practice; longer ones are cut.
    const CAPACITY: usize = 15;

    fn new(text: &str) -> Abbreviation {
        let mut end = text.len().min(Self::CAPACITY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        Abbreviation {
            bytes,
            len: end as u8,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_offset_lookalikes_are_refused_with_the_regional_zone_as_hint() {
        let err = Zone::named("EST").unwrap_err();
        assert!(err.to_string().contains("UTC-05:00 all year"), "{err}");
        let hint = err.hint().unwrap();
        assert!(hint.contains("'America/New_York'"), "{hint}");
        assert!(hint.contains("'Etc/GMT+5'"), "{hint}");
        assert!(
            Zone::named("MST")
                .unwrap_err()
                .hint()
                .unwrap()
                .contains("America/Denver")
        );
        assert!(
            Zone::named("HST")
                .unwrap_err()
                .hint()
                .unwrap()
                .contains("Pacific/Honolulu")
        );
    }

    #[test]
    fn zones_that_follow_daylight_saving_rules_are_accepted() {
        for name in ["EST5EDT", "America/New_York", "Etc/GMT+5", "UTC"] {
            assert!(Zone::named(name).is_ok(), "{name}");
        }
        assert_eq!(
            Zone::named("Europe/Berln"),
            Err(Error::Unknown("Europe/Berln".into()))
        );
    }

    #[test]
    fn offsets_display_as_the_zone_abbreviation() {
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        let winter = chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&berlin);
        assert_eq!(winter.format("%H:%M %Z").to_string(), "13:00 CET");
        assert_eq!(winter.timezone(), berlin);
    }

    #[test]
    fn long_abbreviations_are_cut_at_a_character_boundary() {
        assert_eq!(Abbreviation::new("CET").as_str(), "CET");
        assert_eq!(Abbreviation::new("ééééééééé").as_str(), "ééééééé");
    }
}
