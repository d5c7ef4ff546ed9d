//! Signing in the way production integrations do, through the real binaries against the fake
//! org: the OAuth 2.0 JWT bearer flow (an assertion signed with the connected app's certificate
//! key) and the refresh-token flow. Each syncs the org, renews its token through the same flow
//! when the token expires mid-sync, and logs no key, secret or token even at debug level; each
//! way Salesforce refuses an assertion stops the producer at start with one line that says what
//! to fix; and a set of settings that names no flow, or two, is refused with what each needs.

use std::{path::PathBuf, process::Stdio, time::Duration};

use e2e::{TestEnv, binary::Output};
use fake_salesforce::{FakeOrg, Faults, OrgConfig};

const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const LIMIT: Duration = Duration::from_secs(120);
const CONTACTS: u32 = 3_000;

/// An RSA key and a self-signed certificate of it, as a connected app holds (the certificate)
/// and an integration keeps (the key), written to a directory of the test's own.
struct AppKey {
    dir: PathBuf,
    key_file: PathBuf,
    key_pem: String,
    cert_pem: String,
}

impl AppKey {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["sfsync-jwt".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "sfsync-sign-in-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("server.key");
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Self {
            dir,
            key_file,
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
        }
    }

    /// Base64 lines of the key: none of them may show in any output.
    fn key_lines(&self) -> Vec<&str> {
        self.key_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .collect()
    }
}

impl Drop for AppKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn org(config: OrgConfig) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: CONTACTS,
        seed: 23,
        ..config
    })
    .await
    .unwrap()
}

/// Waits until the worker stored every Contact of the org.
async fn assert_all_stored(env: &TestEnv, what: &str) {
    env.wait_until(&format!("{what}: every Contact stored"), LIMIT, || async {
        Ok(env.count_rows("contact").await.unwrap_or(0) == i64::from(CONTACTS))
    })
    .await
    .unwrap();
}

/// `producer sync --object Contact` with `sign_in` and nothing else of Salesforce's.
async fn sync(env: &TestEnv, sign_in: &[(&str, String)], log: &str) -> Output {
    let mut command = tokio::process::Command::new(PRODUCER);
    command
        .args([
            "sync",
            "--object",
            "Contact",
            "--no-progress",
            "--page-size",
            "500",
        ])
        .envs(env.process_env())
        .env("RUST_LOG", log)
        .env("RUST_BACKTRACE", "1")
        .envs(sign_in.iter().map(|(k, v)| (*k, v.as_str())));
    for unset in [
        "SF_LOGIN_URL",
        "SF_CLIENT_ID",
        "SF_CLIENT_SECRET",
        "SF_USERNAME",
        "SF_PASSWORD",
        "SF_JWT_KEY_FILE",
        "SF_REFRESH_TOKEN",
        "SF_INSTANCE_URL",
        "SF_ACCESS_TOKEN",
    ] {
        if !sign_in.iter().any(|(k, _)| *k == unset) {
            command.env_remove(unset);
        }
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    e2e::binary::output(command, LIMIT).await
}

fn jwt_settings(org: &FakeOrg, key: &AppKey) -> Vec<(&'static str, String)> {
    vec![
        ("SF_LOGIN_URL", org.base_url()),
        ("SF_CLIENT_ID", "demo".into()),
        ("SF_USERNAME", "demo@example.com".into()),
        ("SF_JWT_KEY_FILE", key.key_file.display().to_string()),
    ]
}

/// A sync through one flow whose tokens last 400 ms: the table ends equal to the org's count,
/// the producer logged in more than once through that flow only, said which flow once, and no
/// secret shows in its debug log.
async fn sync_renewing_through(
    flow: &str,
    org: &FakeOrg,
    settings: &[(&str, String)],
    secrets: &[&str],
) {
    let env = TestEnv::new().await.unwrap();
    let worker = TestEnv::spawn_worker_with(env.worker_args(4, 2));
    let out = sync(&env, settings, "debug,sqlx=warn,lapin=info").await;
    assert!(out.success, "{flow}: the sync failed:\n{}", out.stderr);
    assert_all_stored(&env, flow).await;
    worker.stop().await;
    let tokens = org.org().issued_tokens();
    assert!(
        tokens.len() >= 2,
        "{flow}: the token expired mid-sync and was renewed: {} tokens issued",
        tokens.len()
    );
    let log = format!("{}\n{}", out.stdout, out.stderr);
    assert!(log.contains("DEBUG"), "{flow}: debug logging was on");
    let said = log
        .lines()
        .filter(|l| l.contains("Logged in to Salesforce."))
        .collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "{flow}: the flow is logged once:\n{said:#?}");
    assert!(said[0].contains(flow), "{flow}: {}", said[0]);
    let mut searched: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    searched.extend(
        tokens
            .iter()
            .map(|t| t.rsplit_once('!').map_or(t.clone(), |(_, o)| o.to_owned())),
    );
    for secret in &searched {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            panic!("{flow}: a secret appears in the debug log: {line}");
        }
    }
    println!(
        "{flow}: {CONTACTS} contacts, {} tokens issued, {} debug lines, {} secrets searched, none found",
        tokens.len(),
        log.lines().count(),
        searched.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_bearer_flow_syncs_and_renews_its_token_through_the_flow() {
    let key = AppKey::new("jwt");
    let expiring = Faults {
        token_ttl_ms: Some(400),
        latency_ms: 30,
        ..Faults::default()
    };
    let org = org(OrgConfig {
        faults: expiring,
        ..OrgConfig::default().with_jwt_cert(&key.cert_pem).unwrap()
    })
    .await;
    let mut secrets = key.key_lines();
    // The assertion's signature part: it too never shows.
    secrets.push("eyJhbGciOiJSUzI1NiJ9");
    sync_renewing_through("JWT bearer", &org, &jwt_settings(&org, &key), &secrets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_flow_syncs_and_renews_its_token_through_the_flow() {
    let refresh = format!("rt-{}", uuid::Uuid::new_v4().simple());
    let org = org(OrgConfig {
        refresh_token: refresh.clone(),
        client_secret: "cs-6d1f".into(),
        faults: Faults {
            token_ttl_ms: Some(400),
            latency_ms: 30,
            ..Faults::default()
        },
        ..OrgConfig::default()
    })
    .await;
    let settings = vec![
        ("SF_LOGIN_URL", org.base_url()),
        ("SF_CLIENT_ID", "demo".into()),
        ("SF_CLIENT_SECRET", "cs-6d1f".into()),
        ("SF_REFRESH_TOKEN", refresh.clone()),
    ];
    sync_renewing_through("refresh token", &org, &settings, &[&refresh, "cs-6d1f"]).await;
}

/// One line, starting `error: `, holding each of `names`, and none of the key.
fn assert_refused(case: &str, out: &Output, names: &[&str], key: Option<&AppKey>) {
    let (line, _) = e2e::binary::one_line_error(case, out);
    for name in names {
        assert!(line.contains(name), "{case}: does not say {name:?}: {line}");
    }
    for secret in key.map(AppKey::key_lines).unwrap_or_default() {
        assert!(!out.stderr.contains(secret), "{case}: the key leaked");
    }
    println!("{case}: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_assertion_stops_the_producer_at_start_with_one_line() {
    let env = TestEnv::new().await.unwrap();
    let key = AppKey::new("refused");
    let other = AppKey::new("other");
    let with_cert = || OrgConfig::default().with_jwt_cert(&key.cert_pem).unwrap();

    // The client's clock is behind: its assertion has expired by the org's.
    let late = org(OrgConfig {
        jwt_clock_ahead: Duration::from_secs(600),
        ..with_cert()
    })
    .await;
    let out = sync(&env, &jwt_settings(&late, &key), "warn").await;
    assert_refused(
        "expired assertion",
        &out,
        &["invalid_grant: expired authorization code", "clock"],
        Some(&key),
    );

    // Signed with a key that is not the uploaded certificate's.
    let signed = org(with_cert()).await;
    let out = sync(&env, &jwt_settings(&signed, &other), "warn").await;
    assert_refused(
        "wrongly signed assertion",
        &out,
        &["invalid_grant: invalid assertion", "SF_JWT_KEY_FILE"],
        Some(&other),
    );

    // A sandbox expects https://test.salesforce.com; SF_LOGIN_URL says otherwise.
    let sandbox = org(OrgConfig {
        jwt_audience: Some("https://test.salesforce.com".into()),
        ..with_cert()
    })
    .await;
    let out = sync(&env, &jwt_settings(&sandbox, &key), "warn").await;
    assert_refused(
        "wrong audience",
        &out,
        &["invalid_grant: audience is invalid", "SF_LOGIN_URL"],
        Some(&key),
    );

    // The user's profile is not pre-authorized for the app.
    let unapproved = org(OrgConfig {
        jwt_preauthorized: false,
        ..with_cert()
    })
    .await;
    let out = sync(&env, &jwt_settings(&unapproved, &key), "warn").await;
    assert_refused(
        "user not pre-authorized",
        &out,
        &["user hasn't approved this consumer", "pre-authorized"],
        Some(&key),
    );

    // A consumer key the org does not know.
    let mut unknown = jwt_settings(&signed, &key);
    unknown[1].1 = "3MVG9-not-this-org".into();
    let out = sync(&env, &unknown, "warn").await;
    assert_refused(
        "unknown consumer key",
        &out,
        &[
            "invalid_client_id: client identifier invalid",
            "SF_CLIENT_ID",
        ],
        Some(&key),
    );

    // A refresh token that expired or was revoked.
    let refresh = org(OrgConfig::default()).await;
    let out = sync(
        &env,
        &[
            ("SF_LOGIN_URL", refresh.base_url()),
            ("SF_CLIENT_ID", "demo".into()),
            ("SF_REFRESH_TOKEN", "rt-revoked-77".into()),
        ],
        "warn",
    )
    .await;
    assert_refused(
        "revoked refresh token",
        &out,
        &["expired access/refresh token", "SF_REFRESH_TOKEN"],
        None,
    );
    assert!(!out.stderr.contains("rt-revoked-77"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_name_no_flow_or_two_are_refused_with_what_each_needs() {
    let env = TestEnv::new().await.unwrap();
    let key = AppKey::new("settings");
    let base = |extra: &[(&'static str, &str)]| {
        let mut all = vec![
            ("SF_LOGIN_URL", "http://127.0.0.1:9".to_owned()),
            ("SF_CLIENT_ID", "demo".to_owned()),
        ];
        all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        all
    };
    let key_file = key.key_file.display().to_string();
    type Case<'a> = (&'a str, Vec<(&'static str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "key file and refresh token",
            base(&[
                ("SF_USERNAME", "u@x.com"),
                ("SF_JWT_KEY_FILE", &key_file),
                ("SF_REFRESH_TOKEN", "rt-1"),
            ]),
            "both SF_JWT_KEY_FILE (JWT bearer) and SF_REFRESH_TOKEN",
        ),
        (
            "key file without a username",
            base(&[("SF_JWT_KEY_FILE", &key_file)]),
            "SF_JWT_KEY_FILE is set but SF_USERNAME",
        ),
        (
            "key file with a password",
            base(&[
                ("SF_USERNAME", "u@x.com"),
                ("SF_PASSWORD", "pw-88"),
                ("SF_JWT_KEY_FILE", &key_file),
            ]),
            "uses neither SF_PASSWORD nor SF_CLIENT_SECRET",
        ),
        (
            "refresh token with a username",
            base(&[("SF_USERNAME", "u@x.com"), ("SF_REFRESH_TOKEN", "rt-2")]),
            "uses neither SF_USERNAME nor SF_PASSWORD",
        ),
        (
            "a consumer key and nothing else",
            base(&[]),
            "no flow is complete",
        ),
        (
            "a key file that is the certificate",
            {
                let cert = key.dir.join("cert.pem");
                std::fs::write(&cert, &key.cert_pem).unwrap();
                base(&[
                    ("SF_USERNAME", "u@x.com"),
                    ("SF_JWT_KEY_FILE", &cert.display().to_string()),
                ])
            },
            "no PEM private key in it",
        ),
    ];
    for (case, settings, says) in &cases {
        let out = sync(&env, settings, "warn").await;
        let names: &[&str] = if says.contains("PEM") {
            &["SF_JWT_KEY_FILE", says]
        } else {
            &[
                says,
                "each sign-in needs: JWT bearer: SF_LOGIN_URL, SF_CLIENT_ID, SF_USERNAME, SF_JWT_KEY_FILE; refresh token:",
            ]
        };
        assert_refused(case, &out, names, Some(&key));
        assert!(
            !out.stderr.contains("pw-88") && !out.stderr.contains("rt-1"),
            "{case}: a secret leaked"
        );
    }
}

/// PyJWT, run by `tests/pyjwt/cross_check.py` in a virtualenv `tests/pyjwt/python` makes.
async fn pyjwt(args: &[&str]) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/pyjwt");
    let python = tokio::process::Command::new("bash")
        .arg(format!("{dir}/python"))
        .output()
        .await
        .unwrap();
    assert!(
        python.status.success(),
        "making the PyJWT virtualenv failed: {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let out = tokio::process::Command::new(python)
        .arg(format!("{dir}/cross_check.py"))
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "cross_check.py {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_and_sfsync_accept_each_others_assertions() {
    let key = AppKey::new("pyjwt");
    let org = org(OrgConfig::default().with_jwt_cert(&key.cert_pem).unwrap()).await;
    let aud = org.base_url();
    let key_file = key.key_file.display().to_string();

    // PyJWT's assertion, posted as a Python client posts it: the fake org issues a token.
    let assertion = pyjwt(&["sign", &key_file, "demo", "demo@example.com", &aud]).await;
    let answer = reqwest::Client::new()
        .post(format!("{aud}/services/oauth2/token"))
        .form(&[
            ("grant_type", salesforce::jwt::GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );

    // sfsync's assertion, checked by PyJWT against the certificate: signature, aud, exp.
    let sfsync_key = salesforce::jwt::JwtKey::from_pem_file(&key.key_file).unwrap();
    let ours = sfsync_key
        .assertion(
            "demo",
            "demo@example.com",
            &aud,
            std::time::SystemTime::now(),
        )
        .unwrap();
    let cert_file = key.dir.join("cert.pem");
    std::fs::write(&cert_file, &key.cert_pem).unwrap();
    let checked: serde_json::Value = serde_json::from_str(
        &pyjwt(&["verify", &cert_file.display().to_string(), &aud, &ours]).await,
    )
    .unwrap();
    assert_eq!(checked["header"]["alg"], "RS256", "{checked}");
    assert_eq!(checked["claims"]["iss"], "demo", "{checked}");
    assert_eq!(checked["claims"]["sub"], "demo@example.com", "{checked}");
    assert_eq!(checked["claims"]["aud"], aud.as_str(), "{checked}");
    let exp = checked["claims"]["exp"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        exp > now && exp <= now + 180,
        "exp within 3 minutes: {exp} against {now}"
    );

    // The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`, older openssl's form) signs alike.
    let pkcs1 = key.dir.join("pkcs1.key");
    pyjwt(&["pkcs1", &key_file, &pkcs1.display().to_string()]).await;
    assert!(
        std::fs::read_to_string(&pkcs1)
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let env = TestEnv::new().await.unwrap();
    let worker = TestEnv::spawn_worker_with(env.worker_args(4, 2));
    let mut settings = jwt_settings(&org, &key);
    settings[3].1 = pkcs1.display().to_string();
    let out = sync(&env, &settings, "warn").await;
    assert!(out.success, "a PKCS#1 key: {}", out.stderr);
    assert_all_stored(&env, "a PKCS#1 key").await;
    worker.stop().await;
    println!(
        "PyJWT's assertion got a token; PyJWT verified sfsync's ({checked}); a PKCS#1 key synced"
    );
}
