//! `sfsync.toml` through the real binaries: `producer sync --all` from a file with a table
//! override and include/exclude fields; flag > environment > file > default, observed where
//! the setting acts (the broker's prefetch for a worker, page counts for a sync); and a bad
//! file stopping a binary at start with one line naming the setting.

use std::{process::Stdio, time::Duration};

use e2e::{
    TestEnv,
    binary::Output,
    compare,
    config_dir::{ConfigDir, sf_env},
};
use fake_salesforce::OrgConfig;

const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const LIMIT: Duration = Duration::from_secs(120);

fn command(
    binary: &str,
    args: &[&str],
    env: &TestEnv,
    dir: &ConfigDir,
    extra: &[(&str, String)],
) -> tokio::process::Command {
    dir.command(binary, args, env, extra)
}

async fn run(
    binary: &str,
    args: &[&str],
    env: &TestEnv,
    dir: &ConfigDir,
    extra: &[(&str, String)],
) -> Output {
    e2e::binary::output(command(binary, args, env, dir, extra), LIMIT).await
}

/// `(object, pages, records)` of each `run … ` line a sync printed, in order.
fn runs(stdout: &str) -> Vec<(String, u64, u64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("run "))
        .map(|l| {
            let object = l.split_whitespace().nth(2).unwrap().to_owned();
            let counts = l.split("): ").nth(1).unwrap();
            let mut numbers = counts
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<u64>().unwrap());
            (object, numbers.next().unwrap(), numbers.next().unwrap())
        })
        .collect()
}

async fn columns(env: &TestEnv, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = 'salesforce' AND table_name = $1 ORDER BY column_name",
    )
    .bind(table)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn table_exists(env: &TestEnv, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("salesforce.{table}"))
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_follows_the_file_tables_fields_and_order() {
    let env = TestEnv::new().await.unwrap();
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 40,
        contacts: 2_500,
        seed: 77,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let dir = ConfigDir::new(
        &env,
        r#"
[sync]
objects = ["Account"]
page_size = 500
api = "rest"
max_api_usage = 100
no_progress = true

[objects.Contact]
table = "people"
include_fields = ["FirstName", "LastName", "AccountId"]

[objects.Account]
exclude_fields = ["Website", "Phone", "AnnualRevenue"]
"#,
    );
    let worker = env.spawn_worker(4, 2);
    let out = run(
        PRODUCER,
        &["sync", "--all", "--config", &dir.file()],
        &env,
        &dir,
        &sf_env(&org),
    )
    .await;
    assert!(out.success, "sync --all failed: {}", out.stderr);
    // `[sync] objects` first, then the sections not listed there, in file order; 500-record
    // pages from the file.
    assert_eq!(
        runs(&out.stdout),
        [("Account".into(), 1, 40), ("Contact".into(), 5, 2_500)],
        "{}",
        out.stdout
    );
    env.wait_until("every row stored", LIMIT, || async {
        Ok(table_exists(&env, "people").await
            && env.count_rows("people").await? == 2_500
            && env.count_rows("account").await? == 40)
    })
    .await
    .unwrap();
    worker.stop().await;

    // Contact went to the override table, with only the included fields (and those every
    // sync needs); no `contact` table was made.
    assert!(!table_exists(&env, "contact").await);
    assert_eq!(
        columns(&env, "people").await,
        [
            "_sfsync_run_id",
            "_sfsync_synced_at",
            "accountid",
            "firstname",
            "id",
            "isdeleted",
            "lastname",
            "sfid",
            "systemmodstamp"
        ]
    );
    let account_columns = columns(&env, "account").await;
    for gone in ["website", "phone", "annualrevenue"] {
        assert!(
            !account_columns.contains(&gone.to_owned()),
            "{gone}: {account_columns:?}"
        );
    }
    for kept in ["name", "industry", "billingcity", "numberofemployees"] {
        assert!(
            account_columns.contains(&kept.to_owned()),
            "{kept}: {account_columns:?}"
        );
    }

    // And the values are the org's, field by field, for the fields the file kept.
    let keep = |fields: &[&str]| {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        move |mut record: serde_json::Map<String, serde_json::Value>| {
            record.retain(|k, _| fields.contains(k));
            record
        }
    };
    let people = compare::table_rows(&env.pool, "people").await.unwrap();
    let contacts = org.org().records("Contact").map(keep(&[
        "Id",
        "SystemModstamp",
        "IsDeleted",
        "FirstName",
        "LastName",
        "AccountId",
    ]));
    let diffs = compare::differences(contacts, &people);
    assert!(diffs.is_empty(), "{:?}", &diffs[..diffs.len().min(5)]);
    let accounts = compare::table_rows(&env.pool, "account").await.unwrap();
    let org_accounts = org.org().records("Account").map(|mut r| {
        for f in ["Website", "Phone", "AnnualRevenue"] {
            r.remove(f);
        }
        r
    });
    let diffs = compare::differences(org_accounts, &accounts);
    assert!(diffs.is_empty(), "{:?}", &diffs[..diffs.len().min(5)]);
    // A changed table setting: the new table gets every record though a watermark exists;
    // the other object goes on incrementally.
    std::fs::write(
        dir.file(),
        std::fs::read_to_string(dir.file())
            .unwrap()
            .replace("\"people\"", "\"people_v2\""),
    )
    .unwrap();
    let worker = env.spawn_worker(4, 2);
    let out = run(PRODUCER, &["sync", "--all"], &env, &dir, &sf_env(&org)).await;
    assert!(out.success, "second sync --all failed: {}", out.stderr);
    assert!(
        out.stdout.contains("Account (incremental since"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Contact (full,"), "{}", out.stdout);
    assert_eq!(runs(&out.stdout)[1], ("Contact".into(), 5, 2_500));
    env.wait_until("the new table filled", LIMIT, || async {
        Ok(table_exists(&env, "people_v2").await && env.count_rows("people_v2").await? == 2_500)
    })
    .await
    .unwrap();
    worker.stop().await;
}

/// The prefetch the broker holds for this vhost's only consumer, once there is one.
async fn consumer_prefetch(env: &TestEnv) -> u32 {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let out = std::process::Command::new("rabbitmqctl")
            .args([
                "list_consumers",
                "-q",
                "--no-table-headers",
                "-p",
                &env.name,
                "prefetch_count",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(n) = text.lines().find_map(|l| l.trim().parse().ok()) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no consumer after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts a worker, reads the prefetch it asked the broker for, stops it.
async fn worker_prefetch(
    env: &TestEnv,
    dir: &ConfigDir,
    args: &[&str],
    extra: &[(&str, String)],
) -> u32 {
    let mut child = command(WORKER, args, env, dir, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prefetch = consumer_prefetch(env).await;
    child.kill().await.unwrap();
    // Gone from the broker before the next worker starts.
    env.wait_until("the consumer to go", LIMIT, || async {
        let out = std::process::Command::new("rabbitmqctl")
            .args([
                "list_consumers",
                "-q",
                "--no-table-headers",
                "-p",
                &env.name,
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().is_empty())
    })
    .await
    .unwrap();
    prefetch
}

/// Pages a full sync of Contact published.
async fn pages(env: &TestEnv, dir: &ConfigDir, args: &[&str], extra: &[(&str, String)]) -> u64 {
    let mut all = vec!["sync", "--object", "Contact", "--full"];
    all.extend(args);
    let out = run(PRODUCER, &all, env, dir, extra).await;
    assert!(out.success, "{args:?}: {}", out.stderr);
    runs(&out.stdout)[0].1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let env = TestEnv::new().await.unwrap();
    let dir = ConfigDir::new(&env, "[worker]\nprefetch = 7\nconcurrency = 1\n");
    let file = dir.file();
    let env_5 = [("SFSYNC_PREFETCH", "5".to_owned())];
    let config_env = [("SFSYNC_CONFIG", file.clone())];

    // The worker's prefetch, as the broker sees it.
    assert_eq!(
        worker_prefetch(&env, &dir, &["--config", &file, "--prefetch", "3"], &env_5).await,
        3
    );
    assert_eq!(
        worker_prefetch(&env, &dir, &["--config", &file], &env_5).await,
        5
    );
    assert_eq!(worker_prefetch(&env, &dir, &[], &config_env).await, 7);
    // ./sfsync.toml is read without --config (the worker runs in the file's directory).
    assert_eq!(worker_prefetch(&env, &dir, &[], &[]).await, 7);
    std::fs::remove_file(dir.file()).unwrap();
    assert_eq!(worker_prefetch(&env, &dir, &[], &[]).await, 4);

    // A sync's page size, as the number of pages published: 2,400 records.
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: 2_400,
        seed: 5,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    std::fs::write(
        dir.file(),
        "[sync]\npage_size = 400\napi = \"rest\"\nno_progress = true\n",
    )
    .unwrap();
    let mut sf = sf_env(&org);
    sf.push(("SFSYNC_MAX_API_USAGE", "100".into()));
    let env_300 = [("SFSYNC_PAGE_SIZE", "300".to_owned())];
    let with = |extra: &[(&'static str, String)]| [&sf[..], extra].concat();
    assert_eq!(
        pages(&env, &dir, &["--page-size", "200"], &with(&env_300)).await,
        12
    );
    assert_eq!(pages(&env, &dir, &[], &with(&env_300)).await, 8);
    assert_eq!(pages(&env, &dir, &[], &sf).await, 6);
    // --all on the command line beats SFSYNC_OBJECTS (as compose files set it).
    std::fs::write(
        dir.file(),
        "[sync]\nobjects = [\"Contact\"]\napi = \"rest\"\nno_progress = true\n",
    )
    .unwrap();
    let out = run(
        PRODUCER,
        &["sync", "--all", "--full"],
        &env,
        &dir,
        &[&sf[..], &[("SFSYNC_OBJECTS", "Account".to_owned())]].concat(),
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(runs(&out.stdout), [("Contact".into(), 2, 2_400)]);
    std::fs::remove_file(dir.file()).unwrap();
    assert_eq!(
        pages(&env, &dir, &["--api", "rest", "--no-progress"], &sf).await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_stops_each_binary_at_start_naming_the_setting() {
    let env = TestEnv::new().await.unwrap();
    let dir = ConfigDir::new(&env, "");
    let cases: [(&str, &[&str], &str, &str); 7] = [
        (
            WORKER,
            &[],
            "[worker]\nprefetch = 0\n",
            "sfsync.toml: worker.prefetch: 0 is not in 1..=65535",
        ),
        (
            WORKER,
            &[],
            "[worker]\nprefech = 8\n",
            "sfsync.toml: worker.prefech: unknown setting; [worker] takes prefetch, concurrency",
        ),
        (
            WORKER,
            &[],
            "[wroker]\nprefetch = 8\n",
            "sfsync.toml: wroker: unknown section",
        ),
        (
            PRODUCER,
            &["sync", "--all"],
            "[sync]\napi = \"soap\"\n",
            "sfsync.toml: sync.api: \"soap\" is not one of rest, bulk, auto",
        ),
        (
            PRODUCER,
            &["sync", "--all"],
            "[objects.Contact]\ninclude_fields = [\"Last Name\"]\n",
            "sfsync.toml: objects.Contact.include_fields: field \"Last Name\" is not a valid Salesforce API name",
        ),
        (
            PRODUCER,
            &["sync", "--all"],
            "[sync]\npage_size = 2000\n",
            "--all: ",
        ),
        (
            PRODUCER,
            &["status", "--config", "/nonexistent/sfsync.toml"],
            "",
            "/nonexistent/sfsync.toml: cannot read the settings file",
        ),
    ];
    for (binary, args, toml, want) in cases {
        std::fs::write(dir.file(), toml).unwrap();
        let out = run(binary, args, &env, &dir, &[]).await;
        assert!(!out.success, "{toml}: exit 0");
        let stderr = out.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{toml}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {want}")),
            "{toml}: {stderr}\nwanted: error: {want}"
        );
    }

    // A field the org does not have is found before anything is synced.
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: 100,
        seed: 5,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    std::fs::write(
        dir.file(),
        "[sync]\nobjects = [\"Account\", \"Contact\"]\n[objects.Contact]\nexclude_fields = [\"Nickname\"]\n",
    )
    .unwrap();
    let out = run(PRODUCER, &["sync", "--all"], &env, &dir, &sf_env(&org)).await;
    assert!(!out.success);
    assert!(
        out.stderr.trim().ends_with(
            "error: objects.Contact.exclude_fields: object Contact has no field Nickname"
        ),
        "{}",
        out.stderr
    );
    assert!(runs(&out.stdout).is_empty(), "{}", out.stdout);
    assert!(!table_exists(&env, "account").await);
    // A table another object already holds is refused, even when the file names only one of
    // the two objects.
    std::fs::write(
        dir.file(),
        "[sync]\napi = \"rest\"\n[objects.Contact]\ntable = \"account\"\n",
    )
    .unwrap();
    let out = run(
        PRODUCER,
        &["sync", "--object", "Account"],
        &env,
        &dir,
        &sf_env(&org),
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let out = run(
        PRODUCER,
        &["sync", "--object", "Contact"],
        &env,
        &dir,
        &sf_env(&org),
    )
    .await;
    assert!(!out.success);
    assert!(
        out.stderr
            .trim()
            .ends_with("error: table salesforce.account already holds Account records; give Contact a table of its own (`table` under [objects.Contact] in sfsync.toml)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.count_rows("account").await.unwrap(),
        0,
        "nothing stored yet: no worker"
    );
}
