//! TLS to both services, for real: PostgreSQL's `sslmode` as the URL says (the local server
//! runs with `ssl = on` and Debian's snakeoil certificate, CN and SAN `localhost`), and
//! `amqps://` through an in-process TLS-terminating proxy in front of RabbitMQ, with a
//! self-signed certificate trusted through `cacertfile`.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use e2e::{TestEnv, binary::Output, compare};
use fake_salesforce::{FakeOrg, Faults, OrgConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use secrecy::SecretString;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const WAIT: Duration = Duration::from_secs(90);
/// The certificate the local PostgreSQL serves (its own CA: it is self-signed).
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

async fn org(contacts: u32, seed: u64, slow_ms: u64) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 100,
        contacts,
        seed,
        faults: Faults {
            slow_ms,
            ..Faults::default()
        },
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

/// `url` plus query parameters.
fn with_params(url: &str, params: &str) -> String {
    format!("{url}?{params}")
}

/// The test's database URL with a password in it (the server trusts local logins, so any
/// password works), to prove that errors never show it.
fn url_with_password(env: &TestEnv, host: &str) -> String {
    format!("postgres://postgres:hunter2@{host}:5432/{}", env.name)
}

/// Publishes every Contact with the in-process producer on `services`, and waits until the
/// workers have stored every page; then the table must equal the org field by field.
async fn import(env: &TestEnv, org: &FakeOrg, services: common::config::ServiceArgs) {
    let mut args = env.sync_args(org, "Contact");
    args.page_size = 1000;
    args.full = true;
    args.services = services;
    let report = producer::run_sync(&args, &CancellationToken::new())
        .await
        .expect("the producer publishes every page");
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .expect("every page processed");
    // Field by field, and the row count (differences() reports extra or missing rows).
    compare::assert_table_matches(&env.pool, "contact", org.org().records("Contact")).await;
}

async fn run(binary: &str, args: &[&str], base: &TestEnv, env: &[(&str, String)]) -> Output {
    e2e::binary::run(binary, args, base, env, WAIT).await
}

/// Non-zero exit, one line on stderr (besides logged retries) that names the setting and
/// says what to do, and no password.
fn assert_one_line_error(case: &str, out: &Output, wanted: &[&str]) {
    let (line, _) = e2e::binary::one_line_error(case, out);
    for w in wanted {
        assert!(line.contains(w), "{case}: {w:?} missing from: {line}");
    }
    assert!(
        !out.stderr.contains("hunter2"),
        "{case}: password shown: {line}"
    );
    println!("{case}: {line}");
}

/// The producer's `sync` on these services (it connects to the database first, so the fake
/// org is never reached when that fails).
async fn producer_sync(env: &TestEnv, org: &FakeOrg, extra: &[(&str, String)]) -> Output {
    let mut vars = vec![
        ("SF_LOGIN_URL", org.base_url()),
        ("SF_CLIENT_ID", "demo".to_owned()),
        ("SF_CLIENT_SECRET", "demo".to_owned()),
    ];
    vars.extend(extra.iter().cloned());
    run(
        PRODUCER,
        &["sync", "--object", "Contact", "--api", "rest"],
        env,
        &vars,
    )
    .await
}

/// `(application_name, ssl)` of every connection whose name starts with `prefix`.
async fn ssl_of_connections(env: &TestEnv, prefix: &str) -> Vec<(String, bool, String)> {
    sqlx::query_as(
        "SELECT a.application_name, s.ssl, coalesce(s.version, '') || ' ' || coalesce(s.cipher, '')
           FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.application_name LIKE $1 || '%'",
    )
    .bind(prefix)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmode_require_encrypts_every_connection_of_an_import() {
    let env = TestEnv::new().await.unwrap();
    // Slow pages keep the producer's connections open long enough to be seen.
    let org = org(6_000, 71, 150).await;
    let prefix = format!("tls_{}", &env.name[9..17]);
    let services = |who: &str| common::config::ServiceArgs {
        amqp_url: SecretString::from(env.amqp_url.clone()),
        database_url: SecretString::from(with_params(
            &url_with_password(&env, "127.0.0.1"),
            &format!("sslmode=require&application_name={prefix}_{who}"),
        )),
    };
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let mut args = env.worker_args(4, 2);
            args.services = services("worker");
            TestEnv::spawn_worker_with(args)
        })
        .collect();

    // Watch pg_stat_ssl while the import runs: every connection the producer and the workers
    // open must be encrypted.
    let stop = CancellationToken::new();
    let watcher = {
        let (stop, pool, prefix) = (stop.clone(), env.pool.clone(), prefix.clone());
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            while !stop.is_cancelled() {
                let rows: Vec<(String, bool, String)> = sqlx::query_as(
                    "SELECT a.application_name, s.ssl, coalesce(s.version, '') || ' ' || coalesce(s.cipher, '')
                       FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                      WHERE a.application_name LIKE $1 || '%'",
                )
                .bind(&prefix)
                .fetch_all(&pool)
                .await
                .unwrap();
                seen.extend(rows);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    import(&env, &org, services("producer")).await;
    stop.cancel();
    let seen = watcher.await.unwrap();
    println!("pg_stat_ssl during the import: {seen:?}");
    for who in ["worker", "producer"] {
        let name = format!("{prefix}_{who}");
        assert!(
            seen.iter().any(|(app, _, _)| *app == name),
            "no {who} connection seen: {seen:?}"
        );
    }
    assert!(
        seen.iter().all(|(_, ssl, _)| *ssl),
        "an unencrypted connection: {seen:?}"
    );
    // The workers' pools are still open: all of them encrypted.
    let now = ssl_of_connections(&env, &format!("{prefix}_worker")).await;
    assert!(
        !now.is_empty() && now.iter().all(|(_, ssl, _)| *ssl),
        "{now:?}"
    );
    for w in workers {
        w.stop().await;
    }
}

/// Whether the sqlx control connection and the worker's pool both connect with `url`, and
/// are encrypted; `Err` carries the first error.
async fn both_clients(url: &str) -> anyhow::Result<()> {
    let url = SecretString::from(url.to_owned());
    let control = common::db::connect_control(&url).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&control)
        .await?;
    anyhow::ensure!(ssl, "the control connection is not encrypted");
    control.close().await;
    let pool = worker::pool::build(&url, 1)?;
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    anyhow::ensure!(
        row.get::<_, bool>(0),
        "the pool's connection is not encrypted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_modes_check_the_servers_certificate() {
    let env = TestEnv::new().await.unwrap();
    let org = org(10, 72, 0).await;
    let ip = url_with_password(&env, "127.0.0.1");
    let localhost = url_with_password(&env, "localhost");

    // The snakeoil certificate is nobody's CA: verify-full without sslrootcert fails at
    // start, in both binaries, with the fix in the message.
    let untrusted = with_params(&ip, "sslmode=verify-full");
    let out = run(WORKER, &[], &env, &[("DATABASE_URL", untrusted.clone())]).await;
    assert_one_line_error(
        "worker, verify-full, untrusted",
        &out,
        &["DATABASE_URL", "sslrootcert="],
    );
    let out = producer_sync(&env, &org, &[("DATABASE_URL", untrusted)]).await;
    assert_one_line_error(
        "producer, verify-full, untrusted",
        &out,
        &["DATABASE_URL", "sslrootcert="],
    );

    // Trusted through sslrootcert: verify-ca takes it at any address ...
    both_clients(&with_params(
        &ip,
        &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}"),
    ))
    .await
    .expect("verify-ca with the server's certificate as root");
    // ... and so does require with a root certificate (libpq: then it verifies the chain).
    both_clients(&with_params(
        &ip,
        &format!("sslmode=require&sslrootcert={SNAKEOIL}"),
    ))
    .await
    .expect("require with sslrootcert");
    // verify-full also wants the name: `localhost` is in this machine's snakeoil certificate
    // (make-ssl-cert may put the host name there instead: then this step is skipped), and
    // 127.0.0.1 is not.
    if names_localhost(SNAKEOIL) {
        both_clients(&with_params(
            &localhost,
            &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
        ))
        .await
        .expect("verify-full by the certificate's name");
    } else {
        println!("{SNAKEOIL} does not name localhost: verify-full by name not tried");
    }
    let wrong_name = with_params(&ip, &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"));
    let err = both_clients(&wrong_name).await.unwrap_err().to_string();
    assert!(err.starts_with("DATABASE_URL: "), "{err}");
    assert!(err.contains("does not name this host"), "{err}");
    println!("verify-full at 127.0.0.1: {err}");
    // The worker's pool (tokio-postgres, not sqlx) checks the same on its own.
    for url in [&wrong_name, &with_params(&ip, "sslmode=verify-full")] {
        let pool = worker::pool::build(&SecretString::from(url.clone()), 1).unwrap();
        let err = pool
            .get()
            .await
            .expect_err("the pool refuses the certificate");
        let err = worker::pool::describe(&err);
        assert!(err.contains("invalid peer certificate"), "{err}");
    }
    let out = run(WORKER, &[], &env, &[("DATABASE_URL", wrong_name)]).await;
    assert_one_line_error(
        "worker, verify-full, wrong name",
        &out,
        &["DATABASE_URL", "verify-ca"],
    );

    // A root certificate that did not sign the server's: refused even with require.
    let other = Ca::new();
    let err = both_clients(&with_params(
        &ip,
        &format!("sslmode=require&sslrootcert={}", other.pem_path.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("DATABASE_URL") && err.contains("sslrootcert="),
        "{err}"
    );

    // An unknown sslmode and an unreadable sslrootcert are settings errors.
    let out = run(
        WORKER,
        &[],
        &env,
        &[("DATABASE_URL", with_params(&ip, "sslmode=yes"))],
    )
    .await;
    assert_one_line_error(
        "worker, sslmode=yes",
        &out,
        &["DATABASE_URL", "verify-full"],
    );
    let out = run(
        WORKER,
        &[],
        &env,
        &[(
            "DATABASE_URL",
            with_params(&ip, "sslmode=verify-ca&sslrootcert=/nonexistent/root.crt"),
        )],
    )
    .await;
    assert_one_line_error(
        "worker, missing sslrootcert",
        &out,
        &["DATABASE_URL", "/nonexistent/root.crt"],
    );
}

/// Whether the certificate in `pem` is valid for `localhost` (asks `openssl x509 -checkhost`).
fn names_localhost(pem: &str) -> bool {
    std::process::Command::new("openssl")
        .args(["x509", "-noout", "-checkhost", "localhost", "-in", pem])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("does match"))
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, with its PEM in a file.
struct Ca {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pem_path: PathBuf,
}

impl Ca {
    fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let pem_path = std::env::temp_dir().join(format!(
            "sfsync-test-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&pem_path, certified.cert.pem()).unwrap();
        Self {
            cert: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
            pem_path,
        }
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem_path);
    }
}

/// Terminates TLS on `127.0.0.1:<port>` and forwards the plain bytes to `upstream` (RabbitMQ's
/// AMQP port): an `amqps://` broker without touching the broker's configuration.
struct TlsProxy {
    addr: SocketAddr,
    /// Completed TLS handshakes, i.e. clients that trusted the certificate.
    handshakes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    async fn start(ca: &Ca, upstream: SocketAddr) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![ca.cert.clone()],
                PrivateKeyDer::Pkcs8(ca.key.clone_key()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicU64::new(0));
        let counter = handshakes.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return; // an untrusting client gave up
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut plain) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        Self {
            addr,
            handshakes,
            task,
        }
    }

    /// `amqps://` to this proxy for the test's vhost; `localhost` is the certificate's name.
    fn url(&self, env: &TestEnv, ca_file: Option<&Path>) -> String {
        let base = format!(
            "amqps://guest:guest@localhost:{}/{}",
            self.addr.port(),
            env.name
        );
        match ca_file {
            Some(path) => format!("{base}?cacertfile={}", path.display()),
            None => base,
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_over_amqps_lands_every_row() {
    let env = TestEnv::new().await.unwrap();
    let org = org(6_000, 73, 0).await;
    let ca = Ca::new();
    let proxy = TlsProxy::start(&ca, env.amqp_addr().await.unwrap()).await;
    let services = common::config::ServiceArgs {
        amqp_url: SecretString::from(proxy.url(&env, Some(&ca.pem_path))),
        database_url: SecretString::from(env.database_url.clone()),
    };
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let mut args = env.worker_args(4, 2);
            args.services = services.clone();
            TestEnv::spawn_worker_with(args)
        })
        .collect();
    import(&env, &org, services).await;
    let handshakes = proxy.handshakes.load(Ordering::Relaxed);
    // Two workers and the producer, each through the proxy.
    assert!(handshakes >= 3, "{handshakes} TLS handshakes");
    println!(
        "amqps: {} records over {handshakes} TLS connections",
        org.org().records("Contact").count()
    );
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqps_broker_with_an_untrusted_certificate_is_refused_clearly() {
    let env = TestEnv::new().await.unwrap();
    let org = org(10, 74, 0).await;
    let ca = Ca::new();
    let proxy = TlsProxy::start(&ca, env.amqp_addr().await.unwrap()).await;
    // The proxy's certificate is in no trust store: without cacertfile, both refuse it.
    let untrusted = proxy
        .url(&env, None)
        .replace("guest:guest@", "guest:hunter2@");
    let out = run(WORKER, &[], &env, &[("AMQP_URL", untrusted.clone())]).await;
    assert_one_line_error(
        "worker, amqps, untrusted",
        &out,
        &["AMQP_URL", "cacertfile="],
    );
    let out = producer_sync(&env, &org, &[("AMQP_URL", untrusted)]).await;
    assert_one_line_error(
        "producer, amqps, untrusted",
        &out,
        &["AMQP_URL", "cacertfile="],
    );
    assert_eq!(
        proxy.handshakes.load(Ordering::Relaxed),
        0,
        "no handshake completed"
    );
    // amqps:// to the plain AMQP port: a clear error too, not a hang.
    let plain_port = env.amqp_addr().await.unwrap().port();
    let out = run(
        WORKER,
        &[],
        &env,
        &[(
            "AMQP_URL",
            format!("amqps://guest:hunter2@localhost:{plain_port}/{}", env.name),
        )],
    )
    .await;
    assert_one_line_error("worker, amqps to the plain port", &out, &["AMQP_URL"]);
}
