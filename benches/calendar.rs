//! Calendar benchmarks: many decisions at one instant, and 30-day plans for many schedules.
//!
//! Run with `cargo bench --bench calendar`.

use std::hint::black_box;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use curfew::calendar::holidays::HolidaySet;
use curfew::calendar::spec::AbsoluteRange;
use curfew::calendar::{Base, Exception, Schedule, State, Timeline};

const ZONES: [Tz; 6] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Europe::London,
    chrono_tz::America::Los_Angeles,
];

const WINDOWS: [&str; 5] = [
    "Mon-Fri 07:00-20:00",
    "Mon-Fri 08:30-18:30, Sat 10:00-14:00",
    "Sun-Thu 09:00-17:00",
    "Mon-Fri 22:00-06:00",
    "Mon,Wed,Fri 06:00-23:00",
];

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T10:17:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A varied schedule: windows or cron, in one of several zones, some with holidays and an
/// exception.
fn schedule(index: usize) -> Schedule {
    let zone = ZONES[index % ZONES.len()];
    let base = if index % 4 == 3 {
        Base::Cron {
            up_at: "0 7 * * MON-FRI".parse().unwrap(),
            down_at: "30 19 * * MON-FRI".parse().unwrap(),
        }
    } else {
        Base::Uptime(WINDOWS[index % WINDOWS.len()].parse().unwrap())
    };
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let holidays =
        HolidaySet::from_dates((0..24).map(|k| first + Duration::days(k * 29 + index as i64 % 7)));
    let exception_start = now() + Duration::days((index % 20) as i64);
    let exceptions = vec![Exception {
        range: AbsoluteRange {
            from: exception_start.fixed_offset(),
            to: (exception_start + Duration::hours(30)).fixed_offset(),
        },
        state: State::Down,
        reason: None,
    }];
    Schedule::new(zone, base)
        .with_holidays(holidays, State::Down)
        .with_exceptions(exceptions)
}

fn decide_many_targets(c: &mut Criterion) {
    let now = now();
    let schedules: Vec<Schedule> = (0..50).map(schedule).collect();
    let timelines: Vec<Timeline> = schedules
        .iter()
        .map(|s| s.timeline(now - Duration::days(1), now + Duration::days(30)))
        .collect();
    // Targets point at schedules in a scattered order, as they would in a real estate.
    let targets: Vec<usize> = (0..100_000).map(|i| (i * 7919) % schedules.len()).collect();

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(targets.len() as u64));
    group.bench_function("100k_targets_50_schedules_compiled", |b| {
        b.iter(|| {
            let mut up = 0usize;
            for &target in &targets {
                let decision = timelines[target].decide(black_box(now)).unwrap();
                up += usize::from(decision.state == State::Up);
            }
            black_box(up)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("decide_uncompiled");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("1k_targets_50_schedules_with_next_change", |b| {
        b.iter(|| {
            for &target in &targets[..1_000] {
                black_box(schedules[target].decide(black_box(now)));
            }
        })
    });
    group.finish();
}

fn plan_many_schedules(c: &mut Criterion) {
    let now = now();
    let schedules: Vec<Schedule> = (0..1_000).map(schedule).collect();
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.throughput(Throughput::Elements(schedules.len() as u64));
    group.bench_function("30_days_1000_schedules", |b| {
        b.iter(|| {
            let mut transitions = 0usize;
            for schedule in &schedules {
                transitions += schedule
                    .transitions(black_box(now), now + Duration::days(30))
                    .len();
            }
            black_box(transitions)
        })
    });
    group.finish();
}

criterion_group!(benches, decide_many_targets, plan_many_schedules);
criterion_main!(benches);
