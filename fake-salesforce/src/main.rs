//! `fake-salesforce`: serves a deterministic fake Salesforce org until Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_salesforce::{FailStatus, Faults, Org, OrgConfig};
use tokio_util::sync::CancellationToken;

/// A deterministic fake Salesforce org (OAuth, REST query/queryAll, describe, limits,
/// getUpdated/getDeleted, Bulk API 2.0 query jobs).
#[derive(Debug, Parser)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on (use 0.0.0.0:8080 to accept connections from other hosts).
    #[arg(long, env = "FAKE_SF_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Number of Account records to generate.
    #[arg(long, env = "FAKE_SF_ACCOUNTS", default_value_t = 100)]
    accounts: u32,
    /// Number of Contact records to generate.
    #[arg(long, env = "FAKE_SF_CONTACTS", default_value_t = 1000)]
    contacts: u32,
    /// Data seed: the same seed always produces the same records.
    #[arg(long, env = "FAKE_SF_SEED", default_value_t = 1)]
    seed: u64,
    /// OAuth client id (consumer key) the token endpoint accepts.
    #[arg(long, env = "FAKE_SF_CLIENT_ID", default_value = "demo")]
    client_id: String,
    /// OAuth client secret (consumer secret) the token endpoint accepts.
    #[arg(long, env = "FAKE_SF_CLIENT_SECRET", default_value = "demo")]
    client_secret: String,
    /// Username for the password grant.
    #[arg(long, env = "FAKE_SF_USERNAME", default_value = "demo@example.com")]
    username: String,
    /// Password for the password grant.
    #[arg(long, env = "FAKE_SF_PASSWORD", default_value = "demo")]
    password: String,
    /// Refresh token the refresh_token grant accepts.
    #[arg(long, env = "FAKE_SF_REFRESH_TOKEN", default_value = "demo-refresh")]
    refresh_token: String,
    /// Daily API request limit; calls past it get 403 REQUEST_LIMIT_EXCEEDED.
    #[arg(long, env = "FAKE_SF_API_LIMIT", default_value_t = 1_000_000)]
    api_limit: u64,
    /// Seconds a query locator (nextRecordsUrl) stays valid.
    #[arg(long, env = "FAKE_SF_LOCATOR_TTL_SECS", default_value_t = 2 * 24 * 3600)]
    locator_ttl_secs: u64,
    /// instance_url returned with tokens (default: http:// plus the request's Host header).
    #[arg(long, env = "FAKE_SF_INSTANCE_URL")]
    instance_url: Option<String>,
    /// Milliseconds a Bulk 2.0 query job takes to reach JobComplete (UploadComplete for the
    /// first half, InProgress for the second; 0 completes jobs at once).
    #[arg(long, env = "FAKE_SF_BULK_JOB_DELAY_MS", default_value_t = 200)]
    bulk_job_delay_ms: u64,
    /// Fault: every Nth query/queryAll/queryMore call (counted from 1) fails with
    /// --fail-status; 0 never.
    #[arg(long, env = "FAKE_SF_FAIL_EVERY", default_value_t = 0)]
    fail_every: u64,
    /// Fault: how a failing call answers: 503 (JSON SERVER_UNAVAILABLE), 500 (an HTML page, as
    /// a load balancer sends it) or 403 (JSON REQUEST_LIMIT_EXCEEDED).
    #[arg(long, env = "FAKE_SF_FAIL_STATUS", value_enum, default_value = "503")]
    fail_status: FailStatus,
    /// Fault: every Nth query call answers 200 but sends only half of its JSON body and then
    /// closes the connection; 0 never.
    #[arg(long, env = "FAKE_SF_TRUNCATE_EVERY", default_value_t = 0)]
    truncate_every: u64,
    /// Fault: every Nth query call answers 200 with its whole body, but with one byte in the
    /// middle replaced by NUL (full length, not valid JSON); 0 never.
    #[arg(long, env = "FAKE_SF_GARBLE_EVERY", default_value_t = 0)]
    garble_every: u64,
    /// Fault: milliseconds every query call waits before answering.
    #[arg(long, env = "FAKE_SF_SLOW_MS", default_value_t = 0)]
    slow_ms: u64,
    /// Fault: access tokens expire this many seconds after they were issued (calls then get
    /// 401 INVALID_SESSION_ID); default never.
    #[arg(long, env = "FAKE_SF_TOKEN_TTL")]
    token_ttl: Option<u64>,
}

const AFTER_HELP: &str = "\
Endpoints (under /services/data/vXX.X/ unless noted; bearer token required):
  query, queryAll, query/<locator>        REST SOQL with paging
  sobjects, sobjects/<Object>/describe    describe
  sobjects/<Object>/updated/?start=&end=  getUpdated (SystemModstamp window, minute precision)
  sobjects/<Object>/deleted/?start=&end=  getDeleted (soft-deleted and purged records)
  jobs/query[/<id>[/results]]             Bulk API 2.0 query jobs (CSV results, Sforce-Locator)
  limits                                  API usage
  /services/oauth2/token                  OAuth (client_credentials, password, refresh_token)

Test hook (no auth, not counted):
  POST /__admin/mutate  {\"object\":\"Contact\",\"update\":N,\"delete\":N,\"purge\":N,
                         \"create\":N,\"vanish\":N,\"same_modstamp\":false}
    update: new values + SystemModstamp; delete: IsDeleted=true (queryAll, getDeleted);
    purge: gone from queryAll, kept in getDeleted; create: new Ids; vanish: gone everywhere.
    Answers the affected Ids per category and the SystemModstamp they got.
  POST /__admin/faults  {\"fail_every\":N,\"fail_status\":503,\"truncate_every\":N,
                         \"garble_every\":N,\"slow_ms\":N,\"token_ttl_ms\":N,
                         \"expire_tokens\":true,\"expire_cursors\":true}
    Replaces the faults in force (missing fields: off; the same faults as the --fail-every,
    --fail-status, --truncate-every, --garble-every, --slow-ms and --token-ttl flags).
    expire_tokens invalidates every access token now (401 INVALID_SESSION_ID); expire_cursors
    forgets every open query locator (queryMore then gets 400 INVALID_QUERY_LOCATOR). Answers the faults in
    force and counters of what they did; GET /__admin/faults answers the same.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init("info");
    let args = Args::parse();
    let config = OrgConfig {
        accounts: args.accounts,
        contacts: args.contacts,
        seed: args.seed,
        client_id: args.client_id,
        client_secret: args.client_secret,
        username: args.username,
        password: args.password,
        refresh_token: args.refresh_token,
        api_limit: args.api_limit,
        locator_ttl: Duration::from_secs(args.locator_ttl_secs),
        instance_url: args.instance_url,
        bulk_job_delay: Duration::from_millis(args.bulk_job_delay_ms),
        faults: Faults {
            fail_every: args.fail_every,
            fail_status: args.fail_status,
            truncate_every: args.truncate_every,
            garble_every: args.garble_every,
            slow_ms: args.slow_ms,
            token_ttl_ms: args.token_ttl.map(|s| s.saturating_mul(1000)),
        },
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, accounts = config.accounts, contacts = config.contacts, seed = config.seed, "Fake Salesforce org listening.");
    let stop = CancellationToken::new();
    common::shutdown::cancel_on_signal(stop.clone());
    fake_salesforce::serve(listener, Arc::new(Org::new(config)), stop.cancelled_owned()).await
}
