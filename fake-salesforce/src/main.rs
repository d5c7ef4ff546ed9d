//! `fake-salesforce`: serves a deterministic fake Salesforce org until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_salesforce::data::schema::MAX_PLAIN_OBJECTS;
use fake_salesforce::{FailStatus, Faults, Org, OrgConfig, Shape};
use tokio_util::sync::CancellationToken;

/// A deterministic fake Salesforce org (OAuth, REST query/queryAll, describe, limits,
/// getUpdated/getDeleted, Bulk API 2.0 query jobs, sObject Collections writes).
#[derive(Debug, Parser)]
#[command(version, about, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on (use 0.0.0.0:8080 to accept connections from other hosts).
    #[arg(long, env = "FAKE_SF_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Which objects the org serves: classic (Account and Contact, 14 and 22 fields) or real
    /// (a real org's shape: the recorded 250-field Account, Contact, Lead and the generated
    /// objects listed below).
    #[arg(long, env = "FAKE_SF_SHAPE", value_enum, default_value = "classic")]
    shape: Shape,
    /// Number of Account records to generate.
    #[arg(long, env = "FAKE_SF_ACCOUNTS", default_value_t = 100)]
    accounts: u32,
    /// Number of Contact records to generate.
    #[arg(long, env = "FAKE_SF_CONTACTS", default_value_t = 1000)]
    contacts: u32,
    /// Records of other objects, e.g. Lead=1000,Wide__c=500 (objects not named get none;
    /// Account and Contact here override --accounts and --contacts; Plain=N gives every
    /// plain object of --plain-objects N records, unless it is named on its own).
    #[arg(long, env = "FAKE_SF_RECORDS", value_parser = parse_counts, default_value = "")]
    records: BTreeMap<String, u32>,
    /// Adds N plain custom objects, Plain_01__c ... Plain_NN__c (0-99), to either shape:
    /// ordinary replicateable, Bulk-capable custom objects (Name, OwnerId, IsDeleted, the
    /// stamps, Status__c, Amount__c, Active__c, Due__c, Notes__c). Their records come from
    /// --records (Plain_01__c=1000 or Plain=1000 for all of them).
    #[arg(long, env = "FAKE_SF_PLAIN_OBJECTS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_PLAIN_OBJECTS)))]
    plain_objects: u32,
    /// Data seed: the same seed always produces the same records.
    #[arg(long, env = "FAKE_SF_SEED", default_value_t = 1)]
    seed: u64,
    /// OAuth client id (consumer key) the token endpoint accepts.
    #[arg(long, env = "FAKE_SF_CLIENT_ID", default_value = "demo")]
    client_id: String,
    /// OAuth client secret (consumer secret) the token endpoint accepts.
    #[arg(long, env = "FAKE_SF_CLIENT_SECRET", default_value = "demo")]
    client_secret: String,
    /// Username for the password grant and the JWT bearer grant's subject.
    #[arg(long, env = "FAKE_SF_USERNAME", default_value = "demo@example.com")]
    username: String,
    /// Password for the password grant.
    #[arg(long, env = "FAKE_SF_PASSWORD", default_value = "demo")]
    password: String,
    /// Refresh token the refresh_token grant accepts.
    #[arg(long, env = "FAKE_SF_REFRESH_TOKEN", default_value = "demo-refresh")]
    refresh_token: String,
    /// PEM certificate of the connected app: JWT bearer assertions
    /// (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer) must be signed by its key,
    /// with iss = --client-id, sub = --username, aud = this server's URL and exp ahead.
    /// Without it every assertion is refused (invalid assertion).
    #[arg(long, env = "FAKE_SF_JWT_CERT", value_name = "PEM FILE")]
    jwt_cert: Option<std::path::PathBuf>,
    /// The user is not pre-authorized for the connected app: JWT bearer assertions get
    /// "user hasn't approved this consumer".
    #[arg(long, env = "FAKE_SF_JWT_NOT_PREAUTHORIZED")]
    jwt_not_preauthorized: bool,
    /// The aud JWT bearer assertions must carry (default: this server's URL), e.g.
    /// https://test.salesforce.com as a sandbox expects.
    #[arg(long, env = "FAKE_SF_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Seconds the org's clock runs ahead of its clients' when it checks a JWT's exp (a client
    /// whose clock is behind): 200 makes every sfsync assertion expired.
    #[arg(long, env = "FAKE_SF_JWT_CLOCK_AHEAD", default_value_t = 0)]
    jwt_clock_ahead: u64,
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
    /// Fault: REST queries (COUNT() too) whose WHERE matches more than N records answer 400
    /// QUERY_TIMEOUT; default never.
    #[arg(long, env = "FAKE_SF_QUERY_TIMEOUT_ABOVE")]
    query_timeout_above: Option<u64>,
    /// Fault: Bulk query jobs with ORDER BY over more than N records end Failed ("Retried
    /// more than 15 times"); default never.
    #[arg(long, env = "FAKE_SF_BULK_ORDER_BY_LIMIT")]
    bulk_order_by_limit: Option<u64>,
    /// Fault: every Nth record (index 0, N, 2N, …) has a NUL character inside its Description
    /// and Title; 0 never.
    #[arg(long, env = "FAKE_SF_NUL_EVERY", default_value_t = 0)]
    nul_every: u64,
    /// getUpdated/getDeleted answering more Ids than this get 400 EXCEEDED_ID_LIMIT.
    #[arg(long, env = "FAKE_SF_REPLICATION_ID_LIMIT", default_value_t = 600_000)]
    replication_id_limit: u64,
    /// The delete log starts here (ISO 8601, e.g. 2024-05-01T00:00:00Z): getDeleted's
    /// earliestDateAvailable is never earlier; default 15 days before now.
    #[arg(long, env = "FAKE_SF_DELETE_LOG_START", value_parser = parse_instant)]
    delete_log_start: Option<i64>,
    /// Requests whose request line (method, path, query, HTTP version) exceeds this many
    /// bytes get 414 URI Too Long, as Salesforce's; 0 for no limit.
    #[arg(long, env = "FAKE_SF_MAX_REQUEST_LINE", default_value_t = 16_384)]
    max_request_line: usize,
    /// Adds this external Id field (custom text(36), unique, case-insensitive) to every
    /// createable object, for sObject Collections upserts; default none.
    #[arg(long, env = "FAKE_SF_EXTERNAL_ID_FIELD")]
    external_id_field: Option<String>,
    /// Fault: milliseconds every sObject Collections write (direct or a Composite subrequest)
    /// takes while it holds the row locks of its records' parents (Contact.AccountId, an
    /// Account itself); 0 answers at once.
    #[arg(long, env = "FAKE_SF_WRITE_MS", default_value_t = 0)]
    write_ms: u64,
    /// Fault: milliseconds a record waits for a parent locked by another write call before
    /// it fails with UNABLE_TO_LOCK_ROW; 0 fails at once (Salesforce waits about 10 s).
    #[arg(long, env = "FAKE_SF_LOCK_WAIT_MS", default_value_t = 0)]
    lock_wait_ms: u64,
    /// Fault: every Nth write call (sObject Collections or Composite, counted from 1) applies
    /// its writes, then closes the connection without an answer; 0 never.
    #[arg(long, env = "FAKE_SF_COMMIT_THEN_DROP_EVERY", default_value_t = 0)]
    commit_then_drop_every: u64,
    /// Network: milliseconds every API call waits before it is answered, as across the
    /// internet: everything under /services (the OAuth token endpoint, describe, query,
    /// queryMore, every Bulk 2.0 job call and result download, limits, composite), not the
    /// /__admin/ hooks. Adds to --slow-ms. Switchable at runtime ("latency_ms" in POST
    /// /__admin/faults); 0 (the default) answers at once.
    #[arg(long, env = "FAKE_SF_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Network: megabits (10^6 bits) per second, fractions allowed, of the one link every API
    /// response's body crosses: responses sent at once share it (in 16 KiB pieces, taking
    /// turns), after gzip (the bytes on the wire). Default: unlimited.
    #[arg(long, env = "FAKE_SF_BANDWIDTH_MBPS", value_parser = parse_mbps)]
    bandwidth_mbps: Option<f64>,
    /// Network: never compress. By default an API response is sent gzip-compressed
    /// (Content-Encoding: gzip, chunked) when the request says Accept-Encoding: gzip, as
    /// Salesforce does for REST and Bulk 2.0; with this flag Accept-Encoding is ignored and
    /// every body goes out as it is, to measure a client without gzip. FAKE_SF_NO_GZIP takes
    /// 1/0, true/false, yes/no or on/off.
    #[arg(long, env = "FAKE_SF_NO_GZIP", value_parser = clap::builder::BoolishValueParser::new())]
    no_gzip: bool,
}

/// A bandwidth in megabits per second: a positive, finite number.
fn parse_mbps(text: &str) -> Result<f64, String> {
    let mbps: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a number of megabits per second: {e}"))?;
    if mbps.is_finite() && mbps > 0.0 {
        Ok(mbps)
    } else {
        Err(format!("{text:?}: the bandwidth must be above 0 Mbit/s"))
    }
}

/// `Lead=1000,Wide__c=500` (empty: none).
fn parse_counts(text: &str) -> Result<BTreeMap<String, u32>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, count) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not Object=count"))?;
            let count = count
                .trim()
                .parse()
                .map_err(|e| format!("{pair:?}: the count is not a number: {e}"))?;
            Ok((name.trim().to_owned(), count))
        })
        .collect()
}

fn parse_instant(text: &str) -> Result<i64, String> {
    fake_salesforce::soql::parse_datetime(text)
        .ok_or_else(|| format!("{text:?} is not a datetime like 2024-05-01T00:00:00Z"))
}

const AFTER_HELP: &str = "\
Endpoints (under /services/data/vXX.X/ unless noted; bearer token required):
  query, queryAll, query/<locator>        REST SOQL with paging
  sobjects, sobjects/<Object>/describe    describe
  sobjects/<Object>/updated/?start=&end=  getUpdated (SystemModstamp window, minute precision)
  sobjects/<Object>/deleted/?start=&end=  getDeleted (soft-deleted and purged records)
  jobs/query[/<id>[/results]]             Bulk API 2.0 query jobs (CSV results, Sforce-Locator)
  composite/sobjects                      sObject Collections: POST create, PATCH update,
                                          DELETE ?ids=a,b&allOrNone=false (<= 200 records,
                                          one API call, per-record results)
  composite/sobjects/<Object>/<Field>     PATCH upsert on --external-id-field
  composite                               Composite: POST {\"allOrNone\":false,
                                          \"compositeRequest\":[{\"method\",\"url\",
                                          \"referenceId\",\"body\"},...]}: <= 25 subrequests
                                          (<= 5 collections/queries) to sobjects, query and
                                          composite/sobjects, run in order, one API call;
                                          no allOrNone true, no @{ref} notation (400)
  limits                                  API usage
  /services/oauth2/token                  OAuth (client_credentials, password, refresh_token,
                                          JWT bearer with --jwt-cert)
A request line over --max-request-line bytes (16384) gets 414 URI Too Long first.

Network (every call under /services; not /__admin/):
  --latency-ms N        each call waits N ms before it is answered
  --bandwidth-mbps M    response bodies share one link of M Mbit/s
  gzip                  Accept-Encoding: gzip gets a gzip body (Content-Encoding: gzip,
                        chunked), as from Salesforce; --no-gzip sends identity bodies always
  bytes on the wire     response body bytes sent for API calls, after gzip:
                        GET /__admin/faults -> stats.wire_bytes

Objects (--shape):
  classic  Account (14 fields), Contact (22)
  real     Account (250, recorded: formulas, __pc and namespaced fields, 4 addresses),
           Contact (61), Lead (54), Wide__c (735: its full SELECT gets 414),
           AccountHistory (CreatedDate only), UserLogin (LastModifiedDate only, not
           replicateable), LoginHistory (no stamps), CaseStatus (no Bulk API),
           ContentDocumentLink (needs WHERE ContentDocumentId/LinkedEntityId = or IN)
  --plain-objects N adds, to either shape, Plain_01__c ... Plain_NN__c (key prefixes a0A,
           a0B, ..., skipping a0W): ordinary custom objects with Id, OwnerId, IsDeleted,
           Name, CreatedDate, CreatedById, LastModifiedDate, LastModifiedById,
           SystemModstamp, Status__c (picklist), Amount__c (number), Active__c (checkbox),
           Due__c (date), Notes__c (long text area)
  Counts: --accounts, --contacts, --records Object=N,... (objects not named: 0 records;
          Plain=N: every plain object not named on its own).

Test hooks (no auth, not counted):
  POST /__admin/mutate  {\"object\":\"Contact\",\"update\":N,\"delete\":N,\"purge\":N,
                         \"create\":N,\"vanish\":N,\"formula\":N,\"same_modstamp\":false}
    update: new values + SystemModstamp; delete: IsDeleted=true (queryAll, getDeleted);
    purge: gone from queryAll, kept in getDeleted; create: new Ids; vanish: gone everywhere;
    formula: formula fields of N records (all if N is large) change, SystemModstamp does not.
    Answers the affected Ids per category and the SystemModstamp they got.
  POST /__admin/faults  {\"fail_every\":N,\"fail_status\":503,\"truncate_every\":N,
                         \"garble_every\":N,\"slow_ms\":N,\"token_ttl_ms\":N,
                         \"query_timeout_above\":N,\"bulk_order_by_limit\":N,
                         \"nul_every\":N,\"replication_id_limit\":N,
                         \"delete_log_start\":\"2024-05-01T00:00:00Z\",
                         \"write_ms\":N,\"lock_wait_ms\":N,\"commit_then_drop_every\":N,
                         \"latency_ms\":N,\"expire_tokens\":true,\"expire_cursors\":true}
    Replaces the faults in force (missing fields: off or Salesforce's default; the same
    faults as the --fail-every, --fail-status, --truncate-every, --garble-every, --slow-ms,
    --token-ttl, --query-timeout-above, --bulk-order-by-limit, --nul-every,
    --replication-id-limit, --delete-log-start, --write-ms, --lock-wait-ms,
    --commit-then-drop-every and --latency-ms flags).
    expire_tokens invalidates every access token now (401 INVALID_SESSION_ID); expire_cursors
    forgets every open query locator (queryMore then gets 400 INVALID_QUERY_LOCATOR). Answers the faults in
    force and counters of what they did, {\"faults\":{...},\"stats\":{...,\"wire_bytes\":N}};
    GET /__admin/faults answers the same.
  POST /__admin/fields  {\"object\":\"Contact\",\"add\":{\"name\":\"Tier__c\",\"type\":\"picklist\",
                         \"values\":[\"A\",\"B\"],\"existing\":\"null\"},
                         \"hide\":[\"Email\"],\"show\":[\"Title\"]}
    Adds a custom field (existing records null unless existing=generated; SystemModstamp
    unchanged), hides fields from the integration user (describe omits them, SOQL naming
    them gets INVALID_FIELD) or shows them again.
  POST /__admin/validation  {\"object\":\"Contact\",\"field\":\"Email\",\"must_contain\":\"@\",
                             \"message\":\"Email must contain @\"} | {\"object\":\"Contact\",\"clear\":true}
    Adds a validation rule (writes leaving the field non-empty without the text fail with
    FIELD_CUSTOM_VALIDATION_EXCEPTION and the message) or lifts the object's rules.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init("info");
    let args = Args::parse();
    let config = OrgConfig {
        shape: args.shape,
        accounts: args.accounts,
        contacts: args.contacts,
        records: args.records,
        plain_objects: args.plain_objects,
        seed: args.seed,
        client_id: args.client_id,
        client_secret: args.client_secret,
        username: args.username,
        password: args.password,
        refresh_token: args.refresh_token,
        jwt_public_key: None,
        jwt_preauthorized: !args.jwt_not_preauthorized,
        jwt_audience: args.jwt_audience,
        jwt_clock_ahead: Duration::from_secs(args.jwt_clock_ahead),
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
            query_timeout_above: args.query_timeout_above,
            bulk_order_by_limit: args.bulk_order_by_limit,
            nul_every: args.nul_every,
            replication_id_limit: (args.replication_id_limit != 600_000)
                .then_some(args.replication_id_limit),
            delete_log_start: args.delete_log_start,
            write_ms: args.write_ms,
            lock_wait_ms: args.lock_wait_ms,
            commit_then_drop_every: args.commit_then_drop_every,
            latency_ms: args.latency_ms,
        },
        max_request_line: args.max_request_line,
        external_id_field: args.external_id_field,
        bandwidth_mbps: args.bandwidth_mbps,
        gzip: !args.no_gzip,
    };
    let config = match &args.jwt_cert {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("--jwt-cert {}: cannot be read", path.display()))?;
            config
                .with_jwt_cert(&pem)
                .map_err(|e| anyhow::anyhow!("--jwt-cert {}: {e}", path.display()))?
        }
        None => config,
    };
    let unknown = config.unknown_objects();
    if !unknown.is_empty() {
        anyhow::bail!(
            "--records names objects the {:?} shape with {} plain objects does not serve: {}",
            config.shape,
            config.plain_objects,
            unknown.join(", ")
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, latency_ms = config.faults.latency_ms, bandwidth_mbps = ?config.bandwidth_mbps, gzip = config.gzip, shape = ?config.shape, plain_objects = config.plain_objects, accounts = config.accounts, contacts = config.contacts, records = ?config.records, seed = config.seed, "Fake Salesforce org listening.");
    let stop = CancellationToken::new();
    common::shutdown::cancel_on_signal(stop.clone());
    fake_salesforce::serve(listener, Arc::new(Org::new(config)), stop.cancelled_owned()).await
}
