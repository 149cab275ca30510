//! RDS DB instances and Aurora DB clusters against `moto_server` through the real SDK: a night
//! stops the selected instance and cluster and a morning starts them before the workloads
//! (on the fake API server) wake; untagged and production databases are never touched; a
//! database AWS started after seven days is stopped again while one started by hand is left
//! up; a crash between the tag write and the stop loses nothing; read replicas, cluster
//! members and Multi-AZ SQL Server are reported and left alone, at run time and by
//! `check --discover`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_rds::types::Tag;

use crate::support::fixtures::{deployment, namespace};
use crate::support::kube::KubeHarness;
use crate::support::moto::{Moto, office_config};

/// Saturday noon and Sunday noon: down. Monday 10:00 in Berlin: up.
const SATURDAY: &str = "2026-12-05T12:00:00Z";
const SUNDAY: &str = "2026-12-06T12:00:00Z";
const MONDAY: &str = "2026-12-07T09:00:00Z";
const REGION: &str = "eu-central-1";
const ORIGINAL_TAG: &str = "curfew:original-capacity";
const STOPPED_AT_TAG: &str = "curfew:stopped-at";

const STAGING_DATABASES: &str = r#"
      - aws_rds: { tags: { env: staging }, region: eu-central-1 }
"#;

async fn rds(moto: &Moto) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&moto.sdk_config(REGION).await)
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
        .collect()
}

/// A PostgreSQL instance (or one of `engine`) tagged `pairs`.
async fn create_instance(moto: &Moto, id: &str, engine: &str, pairs: &[(&str, &str)]) {
    rds(moto)
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t4g.micro")
        .engine(engine)
        .allocated_storage(20)
        .master_username("curfew")
        .master_user_password("not-a-secret-1")
        .set_tags(Some(tags(pairs)))
        .send()
        .await
        .unwrap();
}

/// An Aurora PostgreSQL cluster tagged `pairs` with one db.r6g.large writer.
async fn create_cluster(moto: &Moto, id: &str, pairs: &[(&str, &str)]) {
    let client = rds(moto).await;
    client
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("curfew")
        .master_user_password("not-a-secret-1")
        .set_tags(Some(tags(pairs)))
        .send()
        .await
        .unwrap();
    client
        .create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .db_instance_class("db.r6g.large")
        .engine("aurora-postgresql")
        .set_tags(Some(tags(pairs)))
        .send()
        .await
        .unwrap();
}

async fn describe_instance(moto: &Moto, id: &str) -> aws_sdk_rds::types::DbInstance {
    let described = rds(moto)
        .await
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    described.db_instances()[0].clone()
}

/// An instance's status and tags.
async fn instance(moto: &Moto, id: &str) -> (String, BTreeMap<String, String>) {
    let instance = describe_instance(moto, id).await;
    let status = instance.db_instance_status().unwrap_or_default();
    (
        status.to_string(),
        tags_of(moto, &instance_arn(moto, id).await).await,
    )
}

/// A cluster's status and tags.
async fn cluster(moto: &Moto, id: &str) -> (String, BTreeMap<String, String>) {
    let described = rds(moto)
        .await
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    let cluster = &described.db_clusters()[0];
    let arn = cluster.db_cluster_arn().unwrap().to_string();
    (
        cluster.status().unwrap_or_default().to_string(),
        tags_of(moto, &arn).await,
    )
}

async fn tags_of(moto: &Moto, arn: &str) -> BTreeMap<String, String> {
    let listed = rds(moto)
        .await
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .unwrap();
    listed
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// curfew's tags on a database: (original, stopped at).
fn curfew_tags(tags: &BTreeMap<String, String>) -> (Option<&str>, Option<&str>) {
    (
        tags.get(ORIGINAL_TAG).map(String::as_str),
        tags.get(STOPPED_AT_TAG).map(String::as_str),
    )
}

/// Asserts that `tags` hold curfew's stop of a running database: the original `running`, and a
/// stop time from the pass that started at `at` (its clock runs on from `at`, so a busy
/// machine may record a few seconds later).
fn assert_stopped_by_curfew(tags: &BTreeMap<String, String>, at: &str, what: &str) {
    let (original, stopped_at) = curfew_tags(tags);
    assert_eq!(original, Some("running"), "{what}: {tags:?}");
    let start = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let stopped_at = stopped_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("{what}: no stop time in {tags:?}"));
    assert!(
        stopped_at >= start && stopped_at - start <= chrono::Duration::seconds(30),
        "{what}: stopped at {stopped_at}, the pass started at {start}"
    );
}

async fn instance_arn(moto: &Moto, id: &str) -> String {
    let instance = describe_instance(moto, id).await;
    instance.db_instance_arn().unwrap().to_string()
}

async fn set_tag(moto: &Moto, arn: &str, key: &str, value: &str) {
    rds(moto)
        .await
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(tags(&[(key, value)])))
        .send()
        .await
        .unwrap();
}

async fn start_instance(moto: &Moto, id: &str) {
    rds(moto)
        .await
        .start_db_instance()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
}

/// `curfew` with `args` and the configuration of `targets`, against moto (and `kubeconfig`).
fn curfew(
    moto: &Moto,
    dir: &Path,
    targets: &str,
    args: &[&str],
    kubeconfig: Option<&Path>,
) -> Output {
    let config = dir.join("curfew.yaml");
    std::fs::write(&config, office_config(targets)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_curfew"));
    command.arg(args[0]).arg("-c").arg(&config).args(&args[1..]);
    command
        .envs(moto.env())
        .env_remove("KUBERNETES_SERVICE_HOST");
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env_remove("KUBECONFIG"),
    };
    command.output().unwrap()
}

/// `run --once --at AT` with the configuration of `targets`.
fn run_at(moto: &Moto, dir: &Path, targets: &str, at: &str) -> Output {
    let state = dir.join("state").display().to_string();
    curfew(
        moto,
        dir,
        targets,
        &["run", "--once", "--at", at, "--state-dir", &state],
        None,
    )
}

/// Where `needle` is in `text`, which must contain it.
fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle} missing in:\n{text}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The standard output of a run that must have succeeded.
fn succeeded(output: &Output) -> String {
    assert_ok(output);
    stdout(output)
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_stops_the_staging_instance_and_cluster_and_a_morning_starts_them_before_the_workloads()
 {
    let moto = Moto::start();
    let managed = [("env", "staging"), ("curfew:managed", "true")];
    create_instance(&moto, "orders", "postgres", &managed).await;
    create_cluster(&moto, "shop", &managed).await;
    create_instance(&moto, "billing", "postgres", &[("env", "production")]).await;
    create_instance(&moto, "scratch", "postgres", &[]).await;
    let targets = format!("{STAGING_DATABASES}      - kubernetes: {{ namespaces: [shop] }}\n");
    let h = KubeHarness::start(&office_config(&targets), SATURDAY).await;
    h.add([namespace("shop"), deployment("shop", "web", 3)]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, h.server.kubeconfig()).unwrap();
    let state = dir.path().join("state").display().to_string();
    let run = |at: &str| {
        let args = ["run", "--once", "--at", at, "--state-dir", &state];
        curfew(&moto, dir.path(), &targets, &args, Some(&kubeconfig))
    };

    // Saturday: the workloads go first, the databases last; both stopped with the stop recorded.
    let text = succeeded(&run(SATURDAY));
    let web = position(&text, "down deployment/shop/web");
    let orders = position(&text, "down db_instance/eu-central-1/orders");
    let shop = position(&text, "down db_cluster/eu-central-1/shop");
    assert!(web < orders && web < shop, "databases sleep last:\n{text}");
    assert_eq!(
        h.replicas("deployments", "shop", "web"),
        (0, Some("3".into()))
    );
    let (status, orders_tags) = instance(&moto, "orders").await;
    assert_eq!(status, "stopped");
    assert_stopped_by_curfew(&orders_tags, SATURDAY, "orders");
    let (status, shop_tags) = cluster(&moto, "shop").await;
    assert_eq!(status, "stopped");
    assert_eq!(curfew_tags(&shop_tags).0, Some("running"));
    assert!(
        !text.contains("shop-1"),
        "the cluster's member is the cluster's: {text}"
    );
    for untouched in ["billing", "scratch"] {
        let (status, tags) = instance(&moto, untouched).await;
        assert_eq!(status, "available", "{untouched}");
        assert_eq!(curfew_tags(&tags), (None, None), "{untouched}");
    }

    // Monday: the databases start first and are waited for; then the workloads.
    let text = succeeded(&run(MONDAY));
    // `ok`: started and available.
    let orders = position(&text, "up db_instance/eu-central-1/orders: ok");
    let shop = position(&text, "up db_cluster/eu-central-1/shop: ok");
    let web = position(&text, "up deployment/shop/web");
    assert!(orders < web && shop < web, "databases wake first:\n{text}");
    assert_eq!(h.replicas("deployments", "shop", "web"), (3, None));
    for (status, tags) in [
        instance(&moto, "orders").await,
        cluster(&moto, "shop").await,
    ] {
        assert_eq!(status, "available");
        assert_eq!(curfew_tags(&tags), (None, None));
    }
    for untouched in ["billing", "scratch"] {
        assert_eq!(instance(&moto, untouched).await.0, "available");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_tag_write_and_the_stop_is_finished_and_restored() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_instance(&moto, "orders", "postgres", &[("env", "staging")]).await;
    // What a kill -9 right after the first tag write leaves: the original, no stop, no time.
    let arn = instance_arn(&moto, "orders").await;
    set_tag(&moto, &arn, ORIGINAL_TAG, "running").await;

    assert_ok(&run_at(&moto, dir.path(), STAGING_DATABASES, SATURDAY));
    let (status, tags) = instance(&moto, "orders").await;
    assert_eq!(status, "stopped");
    assert_stopped_by_curfew(&tags, SATURDAY, "the interrupted stop is finished");

    assert_ok(&run_at(&moto, dir.path(), STAGING_DATABASES, MONDAY));
    let (status, tags) = instance(&moto, "orders").await;
    assert_eq!(status, "available");
    assert_eq!(curfew_tags(&tags), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_aws_started_after_seven_days_is_stopped_again_and_one_started_by_hand_is_left_up()
 {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_instance(&moto, "restarted", "postgres", &[("env", "staging")]).await;
    create_instance(&moto, "by-hand", "postgres", &[("env", "staging")]).await;
    assert_ok(&run_at(&moto, dir.path(), STAGING_DATABASES, SATURDAY));
    assert_eq!(instance(&moto, "restarted").await.0, "stopped");

    // As of Sunday noon, `restarted` was stopped eight days ago (AWS starts it after seven);
    // `by-hand` was stopped yesterday and someone started it.
    let arn = instance_arn(&moto, "restarted").await;
    set_tag(&moto, &arn, STOPPED_AT_TAG, "2026-11-28T12:00:00Z").await;
    start_instance(&moto, "restarted").await;
    start_instance(&moto, "by-hand").await;

    let text = succeeded(&run_at(&moto, dir.path(), STAGING_DATABASES, SUNDAY));
    let (status, tags) = instance(&moto, "restarted").await;
    assert_eq!(status, "stopped", "{text}");
    assert_stopped_by_curfew(&tags, SUNDAY, "the new stop is recorded");
    let (status, tags) = instance(&moto, "by-hand").await;
    assert_eq!(status, "available", "{text}");
    assert_stopped_by_curfew(&tags, SATURDAY, "the stored original is kept");
    assert!(
        text.contains(
            "left alone db_instance/eu-central-1/by-hand: started by hand during downtime"
        ),
        "{text}"
    );

    // Monday: both run, curfew's tags are gone.
    assert_ok(&run_at(&moto, dir.path(), STAGING_DATABASES, MONDAY));
    for id in ["restarted", "by-hand"] {
        let (status, tags) = instance(&moto, id).await;
        assert_eq!(status, "available", "{id}");
        assert_eq!(curfew_tags(&tags), (None, None), "{id}");
    }
}

/// Creates the read replica `id` of the instance `source`.
async fn create_read_replica(moto: &Moto, id: &str, source: &str) {
    rds(moto)
        .await
        .create_db_instance_read_replica()
        .db_instance_identifier(id)
        .source_db_instance_identifier(source)
        .db_instance_class("db.t4g.micro")
        .send()
        .await
        .unwrap();
}

const NAMED_DATABASES: &str = r#"
      - aws_rds: { instances: [orders, orders-ro, shop-1, erp], region: eu-central-1 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_cluster_members_and_multi_az_sql_server_are_reported_and_left_alone() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_instance(&moto, "orders", "postgres", &[]).await;
    create_read_replica(&moto, "orders-ro", "orders").await;
    create_cluster(&moto, "shop", &[]).await;
    rds(&moto)
        .await
        .create_db_instance()
        .db_instance_identifier("erp")
        .db_instance_class("db.m6g.large")
        .engine("sqlserver-se")
        .allocated_storage(200)
        .multi_az(true)
        .master_username("curfew")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();

    let args = ["check", "--discover"];
    let listed = succeeded(&curfew(&moto, dir.path(), NAMED_DATABASES, &args, None));
    for needle in [
        "discovered 4 targets",
        "db_instance/eu-central-1/orders-ro",
        "left alone: a read replica of orders",
        "left alone: has read replicas (orders-ro)",
        "left alone: a member of DB cluster shop",
        "left alone: SQL Server in a Multi-AZ deployment",
    ] {
        assert!(listed.contains(needle), "{needle} missing in:\n{listed}");
    }

    let text = succeeded(&run_at(&moto, dir.path(), NAMED_DATABASES, SATURDAY));
    assert!(text.contains("converged: 4 targets, 0 actions"), "{text}");
    assert!(
        text.contains(
            "left alone db_instance/eu-central-1/orders-ro: cannot be scaled: a read replica"
        ),
        "{text}"
    );
    for id in ["orders", "orders-ro", "shop-1", "erp"] {
        let (status, tags) = instance(&moto, id).await;
        assert_eq!(status, "available", "{id}");
        assert_eq!(curfew_tags(&tags), (None, None), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_names_the_databases_it_leaves_alone_and_why() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    create_instance(&moto, "orders", "postgres", &[]).await;
    create_read_replica(&moto, "orders-ro", "orders").await;
    let config = dir.path().join("curfew.yaml");
    std::fs::write(&config, office_config(NAMED_DATABASES)).unwrap();
    let mut service = Command::new(env!("CARGO_BIN_EXE_curfew"))
        .arg("run")
        .arg("-c")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .envs(moto.env())
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = service.stdout.take().unwrap();
    let announced = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("curfew: listening on http://")
                .map(|rest| rest.trim_end_matches('/').to_string())
        })
        .expect("the service announces its address");

    // Left alone whatever the schedule says, so this holds at any hour.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let unusable = loop {
        let (status, body) = crate::support::http::get(&announced, "/api/v1/environments");
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let unusable = list["environments"][0]["unusable_targets"].clone();
        if unusable.as_array().is_some_and(|a| a.len() == 2) || std::time::Instant::now() > deadline
        {
            break unusable;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = service.kill();
    let _ = service.wait();
    let reason_of = |target: &str| {
        unusable
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["target"] == target)
            .map(|u| u["reason"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{target} missing in {unusable}"))
    };
    assert!(
        reason_of("db_instance/eu-central-1/orders-ro").contains("a read replica of orders"),
        "{unusable}"
    );
    assert!(
        reason_of("db_instance/eu-central-1/orders").contains("has read replicas (orders-ro)"),
        "{unusable}"
    );
    for id in ["orders", "orders-ro"] {
        assert_eq!(instance(&moto, id).await.0, "available", "{id}");
    }
}
