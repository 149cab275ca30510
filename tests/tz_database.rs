//! Zone rules from the system's tz database: a database compiled with zic from
//! `tests/tzdata/newer-than-embedded.zi` (Morocco on +00 from 2026-09-20, unlike the embedded
//! data; release 2099a) decides zones once `TZDIR` names it, in the library and in the binary.
//! The test never depends on the machine's own zone data.

use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use curfew::calendar::{Zone, local};
use curfew::zoneinfo::{Source, ZoneDatabase};

/// The test database's source; its first line names its release.
const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/tzdata/newer-than-embedded.zi"
);

/// 04:56 in Casablanca by the test database, 05:56 by the embedded data.
const CASABLANCA_MORNING: &str = "2026-10-11T04:56:00Z";
const CASABLANCA_SPEC: &str = "Mon-Sun 05:00-18:30 Africa/Casablanca";

/// Compiles the test source with zic into a fresh directory and installs the source next to
/// the TZif files as `tzdata.zi`, as distributions do; `version` replaces its release with a
/// `+VERSION` file.
fn compiled_database(version: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let zic = std::env::var_os("CURFEW_ZIC").unwrap_or_else(|| "/usr/sbin/zic".into());
    let status = Command::new(&zic)
        .arg("-d")
        .arg(dir.path())
        .arg(SOURCE)
        .status()
        .unwrap_or_else(|err| {
            panic!("cannot run zic ({zic:?}): {err}; ./tests/run installs it (libc-bin)")
        });
    assert!(status.success(), "zic compiles the test source");
    std::fs::copy(SOURCE, dir.path().join("tzdata.zi")).unwrap();
    if let Some(version) = version {
        std::fs::write(dir.path().join("+VERSION"), format!("{version}\n")).unwrap();
    }
    dir
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn local_time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
}

fn curfew(tzdir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curfew"))
        .args(args)
        .env("TZDIR", tzdir)
        .output()
        .expect("curfew runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_newer_system_database_decides_the_zones_it_has() {
    let dir = compiled_database(None);
    let database = ZoneDatabase::open(dir.path().to_path_buf(), true);
    let provenance = database.provenance();
    assert_eq!(provenance.source, Source::System);
    assert_eq!(provenance.version, "2099a");
    assert!(
        provenance.to_string().contains("newer than the embedded"),
        "{provenance}"
    );

    let casablanca = database.zone("Africa/Casablanca").unwrap();
    assert!(matches!(casablanca, Zone::System(_)), "{casablanca:?}");
    let morning = utc(CASABLANCA_MORNING);
    assert_eq!(
        morning
            .with_timezone(&casablanca)
            .format("%H:%M %Z")
            .to_string(),
        "04:56 +00"
    );
    let june = utc("2026-06-01T12:00:00Z").with_timezone(&casablanca);
    assert_eq!(june.format("%H:%M %Z").to_string(), "13:00 +01");
    // The embedded data disagrees: that is what the test database is for.
    let embedded = morning.with_timezone(&chrono_tz::Africa::Casablanca);
    assert_eq!(embedded.format("%H:%M").to_string(), "05:56");

    // Zones the database lacks come from the embedded data.
    assert!(matches!(
        database.zone("Asia/Tokyo"),
        Some(Zone::Embedded(_))
    ));
    assert!(database.zone("Mars/Olympus_Mons").is_none());
}

#[test]
fn rules_past_the_last_transition_come_from_the_tz_string_with_curfews_dst_rules() {
    let dir = compiled_database(None);
    let database = ZoneDatabase::open(dir.path().to_path_buf(), true);
    let berlin = database.zone("Europe/Berlin").unwrap();
    assert!(matches!(berlin, Zone::System(_)));
    let summer = utc("2071-07-01T12:00:00Z").with_timezone(&berlin);
    assert_eq!(summer.format("%H:%M %Z").to_string(), "14:00 CEST");
    // 29 March 2071 is the last Sunday of March: 02:30 does not exist, so it happens when the
    // gap ends; 25 October 2071 repeats 02:30, which happens at its first occurrence.
    assert!(
        berlin
            .from_local_datetime(&local_time("2071-03-29 02:30"))
            .single()
            .is_none()
    );
    assert_eq!(
        local::resolve(berlin, local_time("2071-03-29 02:30")),
        utc("2071-03-29T01:00:00Z")
    );
    assert_eq!(
        local::resolve(berlin, local_time("2071-10-25 02:30")),
        utc("2071-10-25T00:30:00Z")
    );
}

#[test]
fn eval_follows_the_database_tzdir_names_when_it_is_newer() {
    let newer = compiled_database(None);
    let args = [
        "eval",
        "--spec",
        CASABLANCA_SPEC,
        "--at",
        CASABLANCA_MORNING,
    ];
    let output = curfew(newer.path(), &args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["up"], false, "04:56 local is before 05:00: {answer}");
    assert_eq!(answer["next_change"], "2026-10-11T05:00:00Z", "{answer}");

    // The same database marked older than the embedded data is not used.
    let older = compiled_database(Some("2000a"));
    let output = curfew(older.path(), &args);
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer["up"], true,
        "05:56 local by the embedded data: {answer}"
    );
}

#[test]
fn check_and_version_show_the_database_in_use_and_follow_it() {
    let newer = compiled_database(None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("casablanca.yaml");
    std::fs::write(
        &config,
        "timezone: Africa/Casablanca\n\
         schedules:\n  office: { uptime: [\"Mon-Sun 05:00-18:30\"] }\n\
         environments:\n  staging: { schedule: office }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let output = curfew(
        newer.path(),
        &["check", "-c", config, "--at", CASABLANCA_MORNING],
    );
    let summary = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let tzdir = newer.path().display().to_string();
    assert!(
        summary.contains(&format!(
            "zone data     2099a from the tz database in {tzdir} (TZDIR), newer than the embedded"
        )),
        "{summary}"
    );
    assert!(summary.contains("now down (outside uptime"), "{summary}");
    assert!(
        summary.contains("changes Sun 2026-10-11 05:00 +00"),
        "{summary}"
    );

    let version = curfew(newer.path(), &["version"]);
    let version = text(&version.stdout);
    assert!(
        version.starts_with(&format!("curfew {}\n", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains(&format!(
            "tz database 2099a from the tz database in {tzdir}"
        )),
        "{version}"
    );

    let older = compiled_database(Some("2000a"));
    let output = curfew(
        older.path(),
        &["check", "-c", config, "--at", CASABLANCA_MORNING],
    );
    let summary = text(&output.stdout);
    assert!(summary.contains("now up (uptime"), "{summary}");
    assert!(
        summary.contains(&format!(
            "embedded; the tz database in {} (TZDIR) is 2000a, not newer",
            older.path().display()
        )),
        "{summary}"
    );
}

#[test]
fn dash_dash_version_still_prints_the_release() {
    let output = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        text(&output.stdout),
        format!("curfew {}\n", env!("CARGO_PKG_VERSION"))
    );
}
