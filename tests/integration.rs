//! curfew's integration tests, in one test binary.
//!
//! Each module is one subject (its own doc comment says what it covers). They share
//! `support`, which is compiled once here instead of once per subject, and one link: a cold
//! `./tests/run` spends its time on the product's dependencies, not on building dozens of
//! test binaries. nextest runs every test in a process of its own, so a test may still set
//! process-wide state (the AWS environment, for one) before it starts any thread.
//!
//! Run one subject with a filter on its module: `cargo nextest run -E 'test(/^kube_state::/)'`.

mod support;

mod api;
mod api_limits_process;
mod api_process;
mod aws_moto;
mod aws_rds;
mod aws_spot_prices;
mod calendar_dst;
mod calendar_properties;
mod check_lint;
mod cli;
mod cost_week;
mod crd;
mod dashboards;
mod degraded;
mod deploy_manifests;
mod dry_run_diff;
mod fake_apiserver;
mod faults;
mod free_text_process;
mod https_process;
mod iam_policy;
mod kube_autoscalers;
mod kube_day_cycle;
mod kube_leader;
mod kube_process;
mod kube_provider;
mod kube_schedules;
mod kube_state;
mod layering;
mod listener_process;
mod openapi;
mod operator_commands;
mod operator_errors;
mod rbac_verbs;
mod reconciler_concurrency;
mod service_process;
mod service_sim;
mod sim_databases;
mod sso_process;
mod tokens_process;
mod tz_database;
mod wake_gateway;
mod wake_process;
