//! curfew: a cost-aware scheduled scaler for staging infrastructure.
//!
//! curfew reads a calendar and decides, for every managed target, whether it should be up or
//! down now, and when that changes. The modules form layers (ARCHITECTURE.md); a module uses
//! only its own layer and those below.
//!
//! * [`domain`] is what curfew reasons about, as plain data: targets, their capacity and the
//!   actions that change them.
//! * [`calendar`] is the pure decision engine: spec strings, cron transitions, holidays,
//!   exceptions and time-zone rules (embedded, or zones of the system's tz database that
//!   [`zoneinfo`] reads and hands it when that database is newer), with `now` always a
//!   parameter.
//! * [`config`] loads and validates the YAML configuration, reporting every error with its
//!   file, line and column.
//! * [`planner`] turns decisions and observed targets into actions, and schedules into
//!   transitions.
//! * [`providers`] talk to the things curfew scales; [`reconciler`] is the loop that drives
//!   them; [`service`] runs it and the other tasks under one shutdown token.
//! * [`overrides`] holds the override stores (a file, or `Override` custom
//!   resources) and expiry; [`audit`] the audit log.
//! * [`leadership`] elects the one replica that acts, over a Kubernetes Lease.
//! * [`state`] is where state lives: the state directory, or ConfigMaps shared by replicas.
//! * [`api`] is the HTTP layer: the REST API under `/api/v1` with tokens, roles and rate
//!   limits, the status page, `/metrics` and the OpenAPI document, and the wake gateway that
//!   wakes a sleeping environment on request.
//! * [`activity`] records each environment's latest request, for sleep when idle.
//! * [`notify`] sends webhook notifications over the small [`http_client`].
//! * [`cli`] holds the command-line commands, each a small function over the library.
//! * [`text`] refuses and escapes the characters of free text that could forge log lines or
//!   drive a terminal.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod activity;
pub mod api;
pub mod audit;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cost;
pub mod domain;
pub mod http_client;
#[cfg(feature = "kubernetes")]
pub mod leadership;
pub mod notify;
pub mod overrides;
pub mod planner;
pub mod providers;
pub mod reconciler;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod text;
pub mod zoneinfo;
