//! `curfew run` and `curfew demo`: the service, on a configuration or on the embedded demo.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{EXIT_BAD_INPUT, demo_clock, demo_upstream};
use crate::api;
use crate::calendar::format::utc_seconds;
use crate::clock::{Clock, SystemClock, WarpedClock};
use crate::config::Config;
use crate::reconciler::Settings;
use crate::service::{self, Options};

/// The demo configuration shipped inside the binary.
pub const DEMO_CONFIG: &str = include_str!("../../schedules/demo.yaml");

/// Arguments of `curfew run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub config: PathBuf,
    /// One reconcile pass, then exit: 0 when converged, 1 with the failed targets and the
    /// target selections that could not be discovered.
    #[arg(long)]
    pub once: bool,
    /// Decide as if it were this instant (RFC 3339 or YYYY-MM-DD): with --once, one pass at
    /// this instant; otherwise the service's clock starts here and runs in real time.
    #[arg(long, visible_alias = "start", value_parser = super::parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// Log the plan and write nothing anywhere: no scaling, no state, no Lease, no Events,
    /// no notifications (changes made through the API stay in memory).
    #[arg(long)]
    pub dry_run: bool,
    /// With --once --dry-run: print the diff as JSON instead of tables.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// State directory (default: the configuration's `state.dir`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Listen address (default: the configuration's `server.listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Arguments of `curfew demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second (3600 shows a day in 24 seconds).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Address for the HTTP server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address for the wake gateway; default: the HTTP server's port plus one (any free
    /// port when that one is 0).
    #[arg(long)]
    pub wake_listen: Option<SocketAddr>,
    /// State directory.
    #[arg(long, default_value = ".curfew")]
    pub state_dir: PathBuf,
    /// Tokens file for the override API.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Start the simulated clock at this instant (RFC 3339 or YYYY-MM-DD), e.g. a Friday
    /// evening; default: where the state directory's demo stopped, or now.
    #[arg(long, value_parser = super::parse_instant)]
    pub start: Option<DateTime<Utc>>,
}

/// Runs `curfew run`.
pub fn run(args: RunArgs) -> u8 {
    let config = match super::load_config(&args.config) {
        Ok(config) => Arc::new(config),
        Err(code) => return code,
    };
    let tokens = match super::load_tokens(&config, None) {
        Ok(tokens) => tokens,
        Err(code) => return code,
    };
    let clock: Arc<dyn Clock> = match args.at {
        // "As if it were T": decisions at T, time running in real time from there.
        Some(at) => Arc::new(WarpedClock::new(at, 1.0)),
        None => Arc::new(SystemClock),
    };
    let state_dir = args.state_dir.unwrap_or_else(|| default_state_dir(&config));
    let settings = Settings {
        dry_run: args.dry_run,
        ..Settings::from_config(&config.reconciler)
    };
    let options = Options {
        listen: if args.once {
            None
        } else {
            args.listen.or(Some(config.server.listen))
        },
        wake_listen: (!args.once && config.environments.values().any(|e| e.wake.is_some()))
            .then_some(config.server.wake_listen),
        config,
        clock,
        state_dir,
        settings,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    if args.once {
        let (dry_run, json) = (args.dry_run, args.json);
        return runtime.block_on(async {
            match service::run_once(options).await {
                Ok(report) if dry_run => super::dry_run::print(&report, json),
                Ok(report) => report_once(&report),
                Err(err) => {
                    eprintln!("error: {err}");
                    1
                }
            }
        });
    }
    runtime.block_on(async {
        match service::run(options, api::serve_service(tokens), |addr, gateway| {
            tracing::info!(%addr, "listening");
            // Scripts and tests read the address from stdout; a closed stdout is no error.
            let mut out = std::io::stdout();
            let _ = writeln!(out, "curfew: listening on http://{addr}/");
            if let Some(gateway) = gateway {
                let _ = writeln!(out, "curfew: wake gateway on http://{gateway}/");
            }
            let _ = out.flush();
        })
        .await
        {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        }
    })
}

fn report_once(report: &crate::reconciler::PassReport) -> u8 {
    for decision in &report.decisions {
        println!(
            "{}: {} ({})",
            decision.environment, decision.state, decision.reason
        );
    }
    for skipped in &report.plan.skipped {
        println!("  left alone {}: {}", skipped.target, skipped.reason);
    }
    for outcome in &report.outcomes {
        let status = match &outcome.error {
            None if outcome.ready => "ok".to_string(),
            None if outcome.late() => "applied, not ready in time".to_string(),
            None => "applied".to_string(),
            Some(err) => format!("FAILED: {}", err.with_hint()),
        };
        println!(
            "  {} {}: {status}",
            outcome.planned.action.direction(),
            outcome.planned.action.target()
        );
    }
    if report.converged() {
        println!(
            "converged: {} targets, {} actions",
            report.targets,
            report.outcomes.len()
        );
        0
    } else {
        if !report.undiscovered.is_empty() {
            super::print_unseen("not converged; targets not discovered:", report.unseen());
        }
        if !report.failures().is_empty() {
            eprintln!("not converged; failed targets:");
        }
        for (target, error) in report.failures() {
            eprintln!("  {target}: {}", error.with_hint());
        }
        for outcome in report.outcomes.iter().filter(|o| o.late()) {
            eprintln!("  {}: not ready in time", outcome.planned.action.target());
        }
        1
    }
}

/// Runs `curfew demo`.
pub fn demo(args: DemoArgs) -> u8 {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        eprintln!("error: --speed must be a positive number");
        return EXIT_BAD_INPUT;
    }
    let config = match Config::from_yaml(DEMO_CONFIG, Path::new("schedules/demo.yaml")) {
        Ok(config) => Arc::new(config),
        Err(err) => {
            eprintln!("the embedded demo configuration is invalid:\n{err}");
            return 1;
        }
    };
    let tokens = match super::load_tokens(&config, args.tokens.as_deref()) {
        Ok(tokens) => tokens,
        Err(code) => return code,
    };
    let speed = args.speed;
    let settings = Settings::from_config(&config.reconciler);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let start = match args.start {
            Some(start) => start,
            None => match demo_clock::resume_point(&args.state_dir).await {
                Ok(resumed) => resumed.unwrap_or_else(Utc::now),
                Err(err) => {
                    eprintln!("error: {err}");
                    return 1;
                }
            },
        };
        let clock: Arc<dyn Clock> = Arc::new(WarpedClock::new(start, speed));
        let simulated = clock.clone();
        crate::telemetry::log_simulated_time(move || simulated.now());
        let state_dir = args.state_dir.clone();
        let keeper = tokio::spawn(demo_clock::keep(state_dir.clone(), clock.clone()));
        let (config, upstream) = match demo_upstream::start(Config::clone(&config)).await {
            Ok(started) => started,
            Err(err) => {
                eprintln!("error: cannot start the demo's upstream: {err}");
                return 1;
            }
        };
        let wake_listen = args.wake_listen.unwrap_or_else(|| {
            let port = match args.listen.port() {
                0 => 0,
                port => port.saturating_add(1),
            };
            SocketAddr::new(args.listen.ip(), port)
        });
        let options = Options {
            config,
            clock: clock.clone(),
            state_dir: args.state_dir,
            settings,
            listen: Some(args.listen),
            wake_listen: Some(wake_listen),
        };
        let announce = move |addr: SocketAddr, gateway: Option<SocketAddr>| {
            // A closed stdout must not take the service down: ignore write errors.
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "curfew demo: http://{addr}/  (simulated estate; time runs {speed}x; Ctrl-C to stop)"
            );
            let _ = writeln!(out, "  environments: http://{addr}/api/v1/environments");
            if let Some(gateway) = gateway {
                let _ = writeln!(
                    out,
                    "  wake gateway: http://{gateway}/  (preview sleeps at night and when idle; a request wakes it)"
                );
            }
            let _ = writeln!(out, "  simulated time starts at {}", utc_seconds(start));
            let _ = out.flush();
        };
        let result = service::run(options, api::serve_service(tokens), announce).await;
        upstream.abort();
        keeper.abort();
        if let Err(err) = demo_clock::save(&state_dir, &*clock) {
            eprintln!("error: cannot save the demo's clock: {err}");
        }
        match result {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("error: {err}");
                1
            }
        }
    })
}

fn default_state_dir(config: &Config) -> PathBuf {
    match &config.state {
        crate::config::StateConfig::Dir(dir) => dir.clone(),
        crate::config::StateConfig::Kubernetes(_) => PathBuf::from(".curfew"),
    }
}

/// A multi-threaded runtime; `Err` holds the exit status after saying why it failed.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("error: cannot start the runtime: {err}");
            1
        })
}
