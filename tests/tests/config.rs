//! Bad input and secrets, through the real binaries: a malformed or unreachable setting gives a
//! one-line error naming it (no panic, no backtrace, no password), names that would reach SOQL
//! or SQL are checked first, and a whole run logged at debug level shows no secret.

use std::{process::Stdio, time::Duration};

use e2e::{TestEnv, binary::Output};
use fake_salesforce::{FakeOrg, Faults, OrgConfig};
use serde_json::json;
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const LIMIT: Duration = Duration::from_secs(120);

async fn run(binary: &str, args: &[&str], base: &TestEnv, env: &[(&str, String)]) -> Output {
    e2e::binary::run(binary, args, base, env, LIMIT).await
}

/// A failure as the issue asks: non-zero exit, exactly one line on stderr, starting `error: `
/// and naming what was wrong, no panic or backtrace, no secret.
fn assert_one_line_error(case: &str, out: &Output, names: &[&str], secrets: &[&str]) {
    let (line, retries) = e2e::binary::one_line_error(case, out);
    assert!(
        names.iter().any(|n| line.contains(n)),
        "{case}: does not name {names:?}: {line}"
    );
    for secret in secrets {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{case}: the secret {secret:?} leaked: {}",
            out.stderr
        );
    }
    println!("{case}: {line} (after {retries} retries)");
}

async fn small_org(faults: Faults, client_secret: &str) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: 3_000,
        seed: 31,
        client_secret: client_secret.into(),
        faults,
        ..OrgConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_names_a_bad_or_unreachable_setting_in_one_line() {
    let env = TestEnv::new().await.unwrap();
    let vhost_url = |userinfo: &str| {
        let mut url = url::Url::parse(&env.amqp_url).unwrap();
        let (user, password) = userinfo.split_once(':').unwrap();
        url.set_username(user).unwrap();
        url.set_password(Some(password)).unwrap();
        url.to_string()
    };
    let db_url = |userinfo: &str, port: u16| {
        let mut url = url::Url::parse(&env.database_url).unwrap();
        let (user, password) = userinfo.split_once(':').unwrap();
        url.set_username(user).unwrap();
        url.set_password(Some(password)).unwrap();
        url.set_port(Some(port)).unwrap();
        url.to_string()
    };
    // (case, setting, value, what the error must name, secrets it must not show)
    type Case = (
        &'static str,
        &'static str,
        String,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "malformed AMQP_URL",
            "AMQP_URL",
            "amqp//guest:pw-9f3a@nowhere".into(),
            &["AMQP_URL"],
            &["pw-9f3a"],
        ),
        (
            "AMQP_URL of another scheme",
            "AMQP_URL",
            "http://guest:pw-9f3b@127.0.0.1:5672/".into(),
            &["AMQP_URL"],
            &["pw-9f3b"],
        ),
        (
            "AMQP_URL on a closed port",
            "AMQP_URL",
            "amqp://guest:pw-9f3c@127.0.0.1:1/%2f".into(),
            &["AMQP_URL"],
            &["pw-9f3c"],
        ),
        (
            "AMQP_URL listing two nodes, both down",
            "AMQP_URL",
            "amqp://guest:pw-9f41@127.0.0.1:1/%2f,amqp://guest:pw-9f42@127.0.0.1:2/%2f".into(),
            &["AMQP_URL: cannot connect to RabbitMQ at any of its 2 nodes"],
            &["pw-9f41", "pw-9f42"],
        ),
        (
            "AMQP_URL with an empty entry",
            "AMQP_URL",
            format!("{},", vhost_url("guest:pw-9f43")),
            &["AMQP_URL: node 2 of 2: empty entry"],
            &["pw-9f43"],
        ),
        (
            "wrong AMQP password",
            "AMQP_URL",
            vhost_url("guest:pw-9f3d"),
            &["AMQP_URL"],
            &["pw-9f3d"],
        ),
        (
            "malformed DATABASE_URL",
            "DATABASE_URL",
            "postgres//postgres:pw-9f3e@127.0.0.1/x".into(),
            &["DATABASE_URL"],
            &["pw-9f3e"],
        ),
        (
            "DATABASE_URL on a closed port",
            "DATABASE_URL",
            db_url("postgres:pw-9f3f", 1),
            &["DATABASE_URL"],
            &["pw-9f3f"],
        ),
        (
            "unknown database role",
            "DATABASE_URL",
            db_url("no_such_role:pw-9f40", 5432),
            &["DATABASE_URL"],
            &["pw-9f40"],
        ),
    ];
    let runs = cases.iter().map(|(case, setting, value, names, secrets)| {
        let env = &env;
        async move {
            let out = run(WORKER, &[], env, &[(setting, value.clone())]).await;
            assert_one_line_error(case, &out, names, secrets);
        }
    });
    futures::future::join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_names_a_bad_or_unreachable_setting_in_one_line() {
    let env = TestEnv::new().await.unwrap();
    let org = small_org(Faults::default(), "cs-4b1d").await;
    let sync = ["sync", "--object", "Contact", "--no-progress"];
    let login = |url: String, secret: &str| {
        vec![
            ("SF_LOGIN_URL", url),
            ("SF_CLIENT_ID", "demo".to_owned()),
            ("SF_CLIENT_SECRET", secret.to_owned()),
        ]
    };
    let with = |extra: Vec<(&'static str, String)>| {
        let mut all = login(org.base_url(), "cs-4b1d");
        all.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        all.extend(extra);
        all
    };
    type Case = (
        &'static str,
        Vec<(&'static str, String)>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed SF_LOGIN_URL",
            with(vec![("SF_LOGIN_URL", "login.salesforce.com".into())]),
            vec!["SF_LOGIN_URL"],
            vec!["cs-4b1d"],
        ),
        (
            "wrong client secret",
            with(vec![("SF_CLIENT_SECRET", "cs-wrong-77".into())]),
            vec!["SF_CLIENT_SECRET"],
            vec!["cs-wrong-77"],
        ),
        (
            "wrong password (password grant)",
            with(vec![
                ("SF_USERNAME", "demo@example.com".into()),
                ("SF_PASSWORD", "pw-wrong-78".into()),
            ]),
            vec!["SF_PASSWORD"],
            vec!["pw-wrong-78", "cs-4b1d"],
        ),
        (
            "malformed AMQP_URL",
            with(vec![("AMQP_URL", "amqp//guest:pw-4b20@x".into())]),
            vec!["AMQP_URL"],
            vec!["pw-4b20", "cs-4b1d"],
        ),
        (
            "malformed DATABASE_URL",
            with(vec![("DATABASE_URL", "postgresql:/x:pw-4b21@".into())]),
            vec!["DATABASE_URL"],
            vec!["pw-4b21", "cs-4b1d"],
        ),
        (
            // Retried first (a network blip is worth waiting out), then reported.
            "SF_LOGIN_URL on a closed port",
            with(vec![("SF_LOGIN_URL", "http://127.0.0.1:1".into())]),
            vec!["SF_LOGIN_URL", "127.0.0.1:1"],
            vec!["cs-4b1d"],
        ),
    ];
    let runs = cases.iter().map(|(case, extra, names, secrets)| {
        let env = &env;
        async move {
            let started = std::time::Instant::now();
            let out = run(PRODUCER, &sync, env, extra).await;
            assert_one_line_error(case, &out, names, secrets);
            println!("  ({case}: {:?})", started.elapsed());
        }
    });
    futures::future::join_all(runs).await;
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sfsync' AND table_name = 'runs'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    if runs > 0 {
        let started: i64 = sqlx::query_scalar("SELECT count(*) FROM sfsync.runs")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(started, 0, "no run starts with bad settings");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_would_reach_soql_or_sql_are_refused() {
    let env = TestEnv::new().await.unwrap();
    let org = small_org(Faults::default(), "demo").await;
    sqlx::raw_sql("CREATE TABLE public.x (n int); INSERT INTO public.x VALUES (1)")
        .execute(&env.pool)
        .await
        .unwrap();

    // SOQL (and the CREATE TABLE the producer would run): refused before any call.
    for object in [
        "Contact; DROP TABLE x",
        "Contact WHERE Id != null",
        "Name, (SELECT Id FROM Contacts)",
        "a'b",
    ] {
        let out = run(
            PRODUCER,
            &["sync", "--object", object, "--no-progress"],
            &env,
            &[
                ("SF_LOGIN_URL", org.base_url()),
                ("SF_CLIENT_ID", "demo".into()),
                ("SF_CLIENT_SECRET", "demo".into()),
            ],
        )
        .await;
        assert_one_line_error(&format!("--object {object:?}"), &out, &["--object"], &[]);
        assert!(out.stderr.contains("not a valid Salesforce API name"));
    }
    assert!(
        org.org().issued_tokens().is_empty() && org.org().api_usage() == 0,
        "no call reached Salesforce"
    );

    // SQL: a page that names an object or fields like that, straight onto the queue.
    let good = producer::run_sync(
        &env.sync_args(&org, "Contact"),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let worker = env.spawn_worker(2, 1);
    env.wait_for_run(good.run_id, good.pages, LIMIT)
        .await
        .unwrap();
    let (first, second) = (
        org.org().record_id("Contact", 0),
        org.org().record_id("Contact", 1),
    );
    let record = |id: &str, evil_field: &str| {
        json!({
            "attributes": {"type": "Contact"}, "Id": id, "SystemModstamp": "2030-01-01T00:00:00.000+0000",
            "IsDeleted": false, "LastName": "Injected", evil_field: "boom"
        })
    };
    env.publish_pages(
        "Contact; DROP TABLE x",
        Uuid::now_v7(),
        &[vec![record(&first, "Title")]],
    )
    .await
    .unwrap();
    let evil_fields = Uuid::now_v7();
    env.publish_pages(
        "Contact",
        evil_fields,
        &[vec![
            // A field without a column is left out; this one never reaches SQL.
            record(&first, "LastName; DROP TABLE x; --"),
            // A field name with a quote cannot even be read as a field: the record is refused.
            record(&second, "x\"; DROP TABLE x; --"),
        ]],
    )
    .await
    .unwrap();
    env.wait_for_run(evil_fields, 1, LIMIT).await.unwrap();
    env.wait_until("two dead letters", LIMIT, || async {
        Ok(env.queue_depth(common::topology::DEAD_QUEUE).await? == 2)
    })
    .await
    .unwrap();
    let letters = env.dead_letters().await.unwrap();
    let class = |c: &str| {
        letters
            .iter()
            .find(|l| l.info.error_class.map(|c| c.as_str()) == Some(c))
            .unwrap_or_else(|| panic!("no {c} letter: {letters:?}"))
    };
    assert!(
        class("decode")
            .info
            .error
            .as_deref()
            .unwrap()
            .contains("not a valid Salesforce API name"),
        "{letters:?}"
    );
    // Refused whole: its fields (the Id among them) could not be read.
    assert_eq!(class("mapping").info.record_index, Some(1), "{letters:?}");
    let x: i64 = sqlx::query_scalar("SELECT count(*) FROM public.x")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(x, 1, "table x survived");
    let name: String =
        sqlx::query_scalar("SELECT lastname FROM salesforce.contact WHERE sfid = $1")
            .bind(&first)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(name, "Injected", "the field without a column was left out");
    worker.stop().await;
}

/// A RabbitMQ user of this test's vhost only, with a password the test can search for;
/// removed on drop. (`guest`'s password is `guest`, a word logs may well contain.)
struct AmqpUser {
    name: String,
}

impl AmqpUser {
    fn create(env: &TestEnv, password: &str) -> Self {
        let name = format!("{}_user", env.name);
        let ctl = |args: &[&str]| {
            let out = std::process::Command::new("rabbitmqctl")
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "rabbitmqctl {:?}", &args[..2]);
        };
        ctl(&["add_user", &name, password]);
        ctl(&["set_permissions", "-p", &env.name, &name, ".*", ".*", ".*"]);
        Self { name }
    }
}

impl Drop for AmqpUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["delete_user", &self.name])
            .output();
    }
}

/// Everything `pipe` says until it closes, read as it comes.
fn drain<R>(pipe: Option<R>) -> tokio::task::JoinHandle<Vec<u8>>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut out).await;
        }
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_logged_at_debug_level_shows_no_secret() {
    let env = TestEnv::new().await.unwrap();
    let tag = Uuid::new_v4().simple().to_string();
    let (client_secret, amqp_password, pg_password) = (
        format!("cs-{tag}"),
        format!("amqp-{tag}"),
        format!("pg-{tag}"),
    );
    // Tokens live 500 ms and query calls take 100 ms: the run logs in again mid-paging.
    let org = small_org(
        Faults {
            slow_ms: 100,
            token_ttl_ms: Some(500),
            ..Faults::default()
        },
        &client_secret,
    )
    .await;
    let user = AmqpUser::create(&env, &amqp_password);
    let mut amqp = url::Url::parse(&env.amqp_url).unwrap();
    amqp.set_username(&user.name).unwrap();
    amqp.set_password(Some(&amqp_password)).unwrap();
    // Local PostgreSQL trusts 127.0.0.1, so any password connects; the URL still carries one.
    let mut database = url::Url::parse(&env.database_url).unwrap();
    database.set_password(Some(&pg_password)).unwrap();
    let services = [
        ("AMQP_URL", amqp.to_string()),
        ("DATABASE_URL", database.to_string()),
        ("RUST_LOG", "debug".to_owned()),
        ("SF_LOGIN_URL", org.base_url()),
        ("SF_CLIENT_ID", "demo".to_owned()),
        ("SF_CLIENT_SECRET", client_secret.clone()),
    ];

    let worker = tokio::process::Command::new(WORKER)
        .envs(env.process_env())
        .envs(services.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read as it comes: a debug log fills a pipe nobody reads, and the worker then blocks.
    let mut worker = worker;
    let (worker_stdout, worker_stderr) = (drain(worker.stdout.take()), drain(worker.stderr.take()));
    let producer = run(
        PRODUCER,
        &[
            "sync",
            "--object",
            "Contact",
            "--no-progress",
            "--page-size",
            "500",
        ],
        &env,
        &services,
    )
    .await;
    assert!(producer.success, "{}", producer.stderr);
    let run_id: Uuid = sqlx::query_scalar("SELECT run_id FROM sfsync.runs")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    env.wait_for_run(run_id, 6, LIMIT).await.unwrap();
    let pid = worker.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(LIMIT, worker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let (worker_stdout, worker_stderr) =
        (worker_stdout.await.unwrap(), worker_stderr.await.unwrap());

    let logs = [
        producer.stdout,
        producer.stderr,
        String::from_utf8_lossy(&worker_stdout).into_owned(),
        String::from_utf8_lossy(&worker_stderr).into_owned(),
    ]
    .join("\n");
    assert!(
        logs.contains("DEBUG"),
        "debug logging was on: {}",
        &logs[..logs.len().min(500)]
    );
    let tokens = org.org().issued_tokens();
    assert!(tokens.len() >= 2, "the run logged in again: {tokens:?}");
    let mut secrets = vec![
        ("client secret", client_secret.clone()),
        ("AMQP password", amqp_password.clone()),
        ("database password", pg_password.clone()),
    ];
    secrets.extend(tokens.into_iter().map(|t| ("access token", t)));
    for (what, secret) in &secrets {
        // Also the token's opaque part alone (after the org id and `!`).
        let opaque = secret.rsplit_once('!').map_or(secret.as_str(), |(_, o)| o);
        if let Some(line) = logs
            .lines()
            .find(|l| l.contains(secret.as_str()) || l.contains(opaque))
        {
            panic!("the {what} appears in the logs: {line}");
        }
    }
    println!(
        "secrets: {} lines of debug logs from a producer and a worker, {} secrets searched, none found",
        logs.lines().count(),
        secrets.len()
    );
}
