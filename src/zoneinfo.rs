//! Where zone rules come from: the system's tz database (`TZDIR`, else the standard zoneinfo
//! directory) when it is newer than the data embedded in the binary, else the embedded data.
//!
//! Governments change their clocks at short notice; a binary's embedded rules age. A tz
//! database kept current by the operating system (Debian's `tzdata` package, for example)
//! fixes that without a new release of curfew. Versions are compared as the tz project
//! numbers its releases (`2025b` < `2026a`): the database's version comes from its `+VERSION`
//! file or the `# version` line of its `tzdata.zi`. A database without a readable version is
//! not used, since nothing says it is newer. Distroless images have no database at all; the
//! embedded data is used there.
//!
//! The choice is made once per process, by [`install`], which also hands the database to the
//! calendar as its [`ZoneSource`] (the binary does that first thing). Zones are read from
//! their TZif files when a name is first looked up (while a configuration or spec is
//! compiled), parsed once and interned; decisions only ever use rules already in memory. A
//! name the system's database lacks falls back to the embedded rules. The calendar stays pure:
//! this module does the reading.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono_tz::Tz;
use parking_lot::Mutex;

use crate::calendar::Zone;
use crate::calendar::zone::{self, SystemZone, ZoneSource};

/// Where tz databases live on most Unix systems.
pub const STANDARD_DIR: &str = "/usr/share/zoneinfo";
/// The environment variable naming another tz database directory.
pub const TZDIR: &str = "TZDIR";
/// The tz database release embedded in this binary.
pub const EMBEDDED_VERSION: &str = chrono_tz::IANA_TZDB_VERSION;

/// TZif files larger than this are not read (real ones are a few KiB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;
/// Version files larger than this are not read.
const MAX_VERSION_BYTES: u64 = 4 * 1024;
/// Zone names longer than this are not looked up.
const MAX_NAME_BYTES: usize = 128;
/// At most this many zones are read from the system's database; later names use the embedded
/// rules. (A tz database has fewer than 2,000 files.)
const MAX_LOADED: usize = 4096;

/// Where the rules in use come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary (chrono-tz).
    Embedded,
    /// Read from the system's tz database.
    System,
}

impl Source {
    /// `embedded` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::System => "system",
        }
    }
}

/// A tz database release such as `2025b`: a year and one or more letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    year: u16,
    /// Letters compare by length first: `z` < `za`.
    letters: (usize, String),
}

impl Version {
    /// Reads a release name (`2025b`); anything after the letters (`2025b-1`) is ignored.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let year: u16 = text.get(..4)?.parse().ok()?;
        let letters: String = text[4..]
            .chars()
            .take_while(char::is_ascii_lowercase)
            .collect();
        (!letters.is_empty()).then_some(Version {
            year,
            letters: (letters.len(), letters),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.year, self.letters.1)
    }
}

/// Which tz database is in use and why: what `curfew version` and `curfew check` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The release in use.
    pub version: String,
    /// Where its rules come from.
    pub source: Source,
    /// The system's database directory that was considered.
    pub system_dir: PathBuf,
    /// Whether that directory came from `TZDIR`.
    pub from_tzdir: bool,
    /// The system database's release, when it has a readable one.
    pub system_version: Option<String>,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.system_dir.display();
        let named = if self.from_tzdir { " (TZDIR)" } else { "" };
        match (self.source, &self.system_version) {
            (Source::System, _) => write!(
                f,
                "{} from the tz database in {dir}{named}, newer than the embedded {EMBEDDED_VERSION}",
                self.version
            ),
            (Source::Embedded, Some(system)) => write!(
                f,
                "{} embedded; the tz database in {dir}{named} is {system}, not newer",
                self.version
            ),
            (Source::Embedded, None) => write!(
                f,
                "{} embedded; no tz database with a version in {dir}{named}",
                self.version
            ),
        }
    }
}

/// The zone rules in use: the embedded ones, and the system's database when it is newer.
#[derive(Debug)]
pub struct ZoneDatabase {
    provenance: Provenance,
    system: Option<SystemZones>,
}

/// Zones read from a tz database directory, each parsed once.
#[derive(Debug)]
struct SystemZones {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, &'static SystemZone>>,
}

// === impl ZoneDatabase ===

impl ZoneDatabase {
    /// The database the environment names: `TZDIR` when set and not empty, else
    /// [`STANDARD_DIR`].
    pub fn from_environment() -> ZoneDatabase {
        match std::env::var_os(TZDIR).filter(|dir| !dir.is_empty()) {
            Some(dir) => ZoneDatabase::open(PathBuf::from(dir), true),
            None => ZoneDatabase::open(PathBuf::from(STANDARD_DIR), false),
        }
    }

    /// The database in `dir` if its version is newer than the embedded data, otherwise the
    /// embedded data. `from_tzdir` says whether `dir` came from `TZDIR` (for the description).
    pub fn open(dir: PathBuf, from_tzdir: bool) -> ZoneDatabase {
        let system_version = read_version(&dir);
        let newer = system_version
            .as_ref()
            .zip(Version::parse(EMBEDDED_VERSION))
            .is_some_and(|(system, embedded)| *system > embedded);
        let provenance = Provenance {
            version: match (&system_version, newer) {
                (Some(system), true) => system.to_string(),
                _ => EMBEDDED_VERSION.to_string(),
            },
            source: if newer {
                Source::System
            } else {
                Source::Embedded
            },
            system_dir: dir.clone(),
            from_tzdir,
            system_version: system_version.map(|v| v.to_string()),
        };
        ZoneDatabase {
            provenance,
            system: newer.then(|| SystemZones {
                dir,
                loaded: Mutex::default(),
            }),
        }
    }

    /// Which database is in use and why.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The zone called `name`: from the system's database when it is in use and has the zone,
    /// else from the embedded data; `None` when neither knows it.
    pub fn zone(&self, name: &str) -> Option<Zone> {
        match self.find(name) {
            Some(zone) => Some(Zone::System(zone)),
            None => name.parse::<Tz>().ok().map(Zone::Embedded),
        }
    }
}

impl ZoneSource for ZoneDatabase {
    fn find(&self, name: &str) -> Option<&'static SystemZone> {
        self.system.as_ref().and_then(|system| system.zone(name))
    }
}

// === impl SystemZones ===

impl SystemZones {
    fn zone(&self, name: &str) -> Option<&'static SystemZone> {
        if !is_zone_name(name) {
            return None;
        }
        let mut loaded = self.loaded.lock();
        if let Some(zone) = loaded.get(name) {
            return Some(zone);
        }
        if loaded.len() >= MAX_LOADED {
            return None;
        }
        let bytes = read_capped(&self.dir.join(name), MAX_TZIF_BYTES)?;
        let zone: &'static SystemZone = Box::leak(Box::new(SystemZone::parse(name, &bytes).ok()?));
        loaded.insert(name.to_string(), zone);
        Some(zone)
    }
}

/// The process's zone database.
static INSTALLED: OnceLock<ZoneDatabase> = OnceLock::new();

/// The process's zone database, chosen from the environment ([`ZoneDatabase::from_environment`])
/// on the first call and installed as the calendar's [`ZoneSource`]; later calls return the
/// same one. Call it before compiling any schedule.
pub fn install() -> &'static ZoneDatabase {
    let database = INSTALLED.get_or_init(ZoneDatabase::from_environment);
    zone::install_source(database);
    database
}

/// The release and source of the rules the calendar resolves zones with: the installed
/// database's, or the embedded data's when none is installed.
pub fn in_use() -> (String, Source) {
    match INSTALLED.get() {
        Some(database) => (
            database.provenance.version.clone(),
            database.provenance.source,
        ),
        None => (EMBEDDED_VERSION.to_string(), Source::Embedded),
    }
}

/// Whether `name` can be a zone name: relative, components of letters, digits, `_`, `-`, `+`
/// and `.`, never `.` or `..`. Anything else is not looked up in the file system.
fn is_zone_name(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b))
        })
}

/// The release of the database in `dir`: its `+VERSION` file, else the `# version` line at
/// the top of its `tzdata.zi`.
fn read_version(dir: &Path) -> Option<Version> {
    if let Some(bytes) = read_capped(&dir.join("+VERSION"), MAX_VERSION_BYTES) {
        return Version::parse(&String::from_utf8_lossy(&bytes));
    }
    let head = read_head(&dir.join("tzdata.zi"), MAX_VERSION_BYTES)?;
    String::from_utf8_lossy(&head)
        .lines()
        .take_while(|line| line.starts_with('#'))
        .find_map(|line| line.strip_prefix("# version "))
        .and_then(Version::parse)
}

/// The whole file at `path`, if it exists and is at most `max` bytes.
fn read_capped(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// The first `max` bytes of the file at `path`.
fn read_head(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_tz_releases() {
        let v = |text| Version::parse(text).unwrap();
        assert!(v("2025b") < v("2026a"));
        assert!(v("2026a") < v("2026b"));
        assert!(v("2026z") < v("2026za"));
        assert_eq!(v("2025b-1"), v("2025b"));
        assert_eq!(v(" 2025b\n").to_string(), "2025b");
        assert!(Version::parse("25b").is_none());
        assert!(Version::parse("2025").is_none());
        assert!(Version::parse(EMBEDDED_VERSION).is_some());
    }

    #[test]
    fn the_version_comes_from_plus_version_else_from_tzdata_zi() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_version(dir.path()), None);
        std::fs::write(
            dir.path().join("tzdata.zi"),
            "# version 2099b\n# This zic input file is in the public domain.\nR d 1916 o - Jun 3 24 1 -\n",
        )
        .unwrap();
        assert_eq!(read_version(dir.path()), Version::parse("2099b"));
        std::fs::write(dir.path().join("+VERSION"), "2099c\n").unwrap();
        assert_eq!(read_version(dir.path()), Version::parse("2099c"));
    }

    #[test]
    fn a_database_that_is_not_newer_leaves_the_embedded_data_in_use() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("+VERSION"), "2000a\n").unwrap();
        let database = ZoneDatabase::open(dir.path().to_path_buf(), false);
        let provenance = database.provenance();
        assert_eq!(provenance.source, Source::Embedded);
        assert_eq!(provenance.version, EMBEDDED_VERSION);
        assert_eq!(provenance.system_version.as_deref(), Some("2000a"));
        assert!(
            provenance.to_string().contains("is 2000a, not newer"),
            "{provenance}"
        );
        assert!(matches!(
            database.zone("Africa/Casablanca"),
            Some(Zone::Embedded(_))
        ));
    }

    #[test]
    fn a_directory_without_a_version_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let database = ZoneDatabase::open(dir.path().to_path_buf(), true);
        let provenance = database.provenance();
        assert_eq!(provenance.source, Source::Embedded);
        assert!(
            provenance
                .to_string()
                .contains("no tz database with a version"),
            "{provenance}"
        );
        let missing = ZoneDatabase::open(dir.path().join("nothing-here"), true);
        assert_eq!(missing.provenance().source, Source::Embedded);
    }

    #[test]
    fn names_that_are_not_zone_names_never_reach_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("+VERSION"), "2099a\n").unwrap();
        std::fs::write(dir.path().join("secret"), "TZif but not really").unwrap();
        let database = ZoneDatabase::open(dir.path().to_path_buf(), true);
        assert_eq!(database.provenance().source, Source::System);
        for name in [
            "../secret",
            "/etc/passwd",
            "Africa/../secret",
            "",
            "Africa//Casablanca",
        ] {
            assert!(!is_zone_name(name), "{name}");
            assert!(database.zone(name).is_none(), "{name}");
        }
        // A file that is not TZif is no zone; names the database lacks are embedded ones.
        assert!(database.zone("secret").is_none());
        assert!(database.zone("+VERSION").is_none());
        assert!(matches!(
            database.zone("Europe/Berlin"),
            Some(Zone::Embedded(_))
        ));
        assert!(is_zone_name("Etc/GMT+5") && is_zone_name("America/Port-au-Prince"));
    }
}
