//! `curfew eval`: one decision, or a batch of JSON lines on stdin.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EXIT_BAD_INPUT, parse_instant};
use crate::calendar::spec::{self, Spec};
use crate::calendar::{Base, Schedule, State};

/// One input line of the batch mode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    spec: String,
    at: String,
}

/// One output line of the batch mode.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Answer {
    Decision { up: bool },
    Failure { error: String },
}

/// The full answer of the single mode.
#[derive(Debug, Serialize)]
struct Verdict {
    up: bool,
    state: State,
    rule: String,
    next_change: Option<DateTime<Utc>>,
}

/// Decides `spec` at `at` and prints the verdict as JSON; exit 2 for a bad spec or zone.
pub fn single(spec: &str, at: DateTime<Utc>, timezone: &str) -> u8 {
    let schedule = match compile(spec, timezone) {
        Ok(schedule) => schedule,
        Err(err) => {
            eprintln!("error: {err}");
            return EXIT_BAD_INPUT;
        }
    };
    let decision = schedule.decide(at);
    let verdict = Verdict {
        up: decision.state == State::Up,
        state: decision.state,
        rule: schedule.describe(decision.rule),
        next_change: decision.next_change,
    };
    match serde_json::to_string(&verdict) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

/// Answers JSON lines `{"spec", "at"}` from `input` with `{"up"}` or `{"error"}` lines.
///
/// A bad line gets an error answer and the batch goes on. Returns 0, or 1 on an I/O error.
pub fn batch(input: impl BufRead, mut output: impl Write, timezone: &str) -> u8 {
    let mut cache: HashMap<String, Result<Schedule, String>> = HashMap::new();
    let mut out = std::io::BufWriter::new(&mut output);
    for line in input.lines() {
        let Ok(line) = line else { return 1 };
        if line.trim().is_empty() {
            continue;
        }
        let answer = answer(&line, timezone, &mut cache);
        let written =
            serde_json::to_writer(&mut out, &answer).is_ok() && out.write_all(b"\n").is_ok();
        if !written {
            return 1;
        }
    }
    if out.flush().is_err() {
        return 1;
    }
    0
}

fn answer(
    line: &str,
    timezone: &str,
    cache: &mut HashMap<String, Result<Schedule, String>>,
) -> Answer {
    let request: Request = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(err) => {
            return Answer::Failure {
                error: format!("bad request line: {err}"),
            };
        }
    };
    let at = match parse_instant(&request.at) {
        Ok(at) => at,
        Err(error) => return Answer::Failure { error },
    };
    let schedule = cache
        .entry(request.spec)
        .or_insert_with_key(|spec| compile(spec, timezone).map_err(|e| e.to_string()));
    match schedule {
        Ok(schedule) => Answer::Decision {
            up: schedule.state_at(at).0 == State::Up,
        },
        Err(error) => Answer::Failure {
            error: error.clone(),
        },
    }
}

fn compile(text: &str, timezone: &str) -> Result<Schedule, spec::Error> {
    let zone = spec::parse_zone(timezone)?;
    let spec: Spec = text.parse()?;
    Ok(Schedule::new(zone, Base::Uptime(spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_batch(input: &str) -> Vec<serde_json::Value> {
        let mut output = Vec::new();
        assert_eq!(batch(input.as_bytes(), &mut output, "UTC"), 0);
        String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn batch_answers_every_line_and_survives_bad_ones() {
        let answers = run_batch(concat!(
            r#"{"spec": "Mon-Fri 07:00-20:00 Europe/Berlin", "at": "2026-11-30T08:00:00Z"}"#,
            "\n",
            r#"{"spec": "Mon-Fri 07:00-25:00", "at": "2026-11-30T08:00:00Z"}"#,
            "\n",
            "not json\n",
            r#"{"spec": "Mon-Fri 07:00-20:00 Europe/Berlin", "at": "2026-11-28T08:00:00Z"}"#,
            "\n",
        ));
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0], serde_json::json!({"up": true}));
        assert!(answers[1]["error"].as_str().unwrap().contains("25:00"));
        assert!(answers[2]["error"].is_string());
        assert_eq!(answers[3], serde_json::json!({"up": false}));
    }
}
