//! curfew: a cost-aware scheduled scaler for staging infrastructure.
//!
//! curfew reads a calendar and decides, for every managed target, whether it should be up or
//! down now, and when that changes.
//!
//! * [`calendar`] is the pure decision engine: spec strings, cron transitions, holidays,
//!   exceptions and time-zone rules (embedded, or the system's tz database when it is newer),
//!   with `now` always a parameter.
//! * [`config`] loads and validates the YAML configuration, reporting every error with its
//!   file, line and column.
//! * [`planner`] turns a validated configuration into transitions per environment.
//! * [`overrides`] holds the override model, its stores (a file, or `Override` custom
//!   resources) and expiry; [`audit`] the audit log.
//! * [`state`] is where state lives: the state directory, or ConfigMaps shared by replicas.
//! * [`api`] is the HTTP layer: the REST API under `/api/v1` with tokens, roles and rate
//!   limits, the status page, `/metrics` and the OpenAPI document.
//! * [`notify`] sends webhook notifications over the small [`http_client`].
//! * [`cli`] holds the command-line commands, each a small function over the library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cost;
pub mod http_client;
pub mod notify;
pub mod overrides;
pub mod planner;
pub mod providers;
pub mod reconciler;
pub mod service;
pub mod state;
pub mod telemetry;
