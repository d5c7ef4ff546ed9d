//! A deterministic fake Salesforce org over HTTP, faithful enough for real client libraries:
//! OAuth token endpoint, REST query/queryAll with paging cursors, describe, limits,
//! getUpdated/getDeleted, Bulk API 2.0 query jobs, sObject Collections writes and the
//! Composite resource around them; in the shape of a real org on demand, with the behaviours
//! of real orgs that integrations trip over.
//!
//! # Layout
//! - [`data`]: object metadata (the classic and the real [`Shape`]), the deterministic record
//!   generator and the store. In [`data::schema`], `field` and `object` hold the metadata
//!   types, `classic`, `real` and `generated` the objects of each shape (`generated::plain`
//!   the plain objects either shape can add).
//! - [`soql`]: the SOQL subset: the lexer, the parser (its grammar, name resolution in
//!   `parser::resolve` and literal checks in `parser::literal`) and the evaluator.
//! - [`routes`], [`auth`], [`cursor`], [`describe`], [`error`]: the HTTP surface. `routes`
//!   holds the envelope of every REST call and the table from paths to resources; its files
//!   answer query/queryAll/queryMore (`query`), describe and records (`sobjects`), sObject
//!   Collections (`collections`), Composite (`composite`), `limits` and the `/__admin/` hooks
//!   (`admin`). `base64` serves Basic credentials and Bulk locators.
//! - [`render`]: JSON page rendering, the hot path.
//! - [`bulk`]: Bulk API 2.0 query jobs and their CSV results: the job store (`store`), a job's
//!   creation, state and info (`lifecycle`), the result chunks and their locators
//!   (`results`) and the CSV rendering ([`bulk::csv`]).
//! - [`network`]: a distant org's network on every API call: latency, bandwidth, gzip, and
//!   the count of bytes on the wire.
//! - [`faults`]: injected failures, truncated bodies, slowness, expiring tokens and locators,
//!   and real orgs' limits (query timeouts, NUL characters, Id limits, a trimmed delete log).
//! - `org`: the org's state, its mutations, its field changes, the replication resources and
//!   the writes through sObject Collections (`org::write`: reading a call, row locks,
//!   validation rules, applying it).
//!
//! Tests start an org with [`spawn`] and inspect it through [`Org`]'s methods.
//!
//! # Shapes
//! [`OrgConfig::shape`] (`--shape`) picks the objects. [`Shape::Classic`], the default, serves
//! Account (14 fields) and Contact (22) exactly as earlier versions did, byte for byte.
//! [`Shape::Real`] serves what a production org looks like (see [`data::schema::real`] for the
//! table): Account from a recorded 250-field person-account describe (16 formula fields,
//! `__pc` and namespaced fields, multipicklists, four compound addresses), Contact (the
//! recorded describe plus the classic fields it lacks, `Engagement_Score__c` included) and
//! Lead from recorded describes; and the generated Wide__c (735 fields), AccountHistory (no
//! SystemModstamp nor LastModifiedDate), UserLogin (LastModifiedDate only, not replicateable),
//! LoginHistory (no stamps at all), CaseStatus (refused by the Bulk API) and
//! ContentDocumentLink (needs a WHERE on ContentDocumentId or LinkedEntityId). The global
//! describe and each describe answer with the recorded JSON, or JSON modelled on it.
//!
//! # Plain objects
//! [`OrgConfig::plain_objects`] (`--plain-objects N`, env `FAKE_SF_PLAIN_OBJECTS`, 0 to 99,
//! default 0) adds N ordinary custom objects to either shape, after the shape's own objects:
//! `Plain_01__c` … `Plain_NN__c` (two digits; labels `Plain 01` …), key prefixes `a0A`,
//! `a0B`, … `a0V`, `a0X`, … (Wide__c's `a0W` skipped), `a0a` … `a0z`, then `a10`, `a11`, ….
//! Each is replicateable, queryable, Bulk-capable and createable, with describe JSON modelled
//! on recorded fields like the other generated objects, and has 14 fields: Id, OwnerId,
//! IsDeleted, Name (text 80, the name field), CreatedDate, CreatedById, LastModifiedDate,
//! LastModifiedById, SystemModstamp, `Status__c` (picklist: New, In Progress, On Hold, Done,
//! Cancelled), `Amount__c` (number(16, 2)), `Active__c` (checkbox), `Due__c` (date) and
//! `Notes__c` (long text area(32768): neither filterable nor sortable). Everything served for
//! other objects works for them: describe, the global describe, query/queryAll/queryMore,
//! COUNT(), getUpdated/getDeleted, Bulk 2.0, Composite, sObject Collections writes and
//! mutations. Their records, like any object's, come from [`OrgConfig::records`]
//! (`--records Plain_01__c=1000`), where `Plain=1000` counts every plain object not named on
//! its own.
//!
//! # Record counts
//! [`OrgConfig::accounts`] and [`OrgConfig::contacts`] (`--accounts`, `--contacts`) count
//! Accounts and Contacts; [`OrgConfig::records`] (`--records Lead=1000,Wide__c=500`) counts
//! any object, and objects it does not name get no records. Records are computed on demand
//! from (seed, object, index, field): the same seed gives the same bytes, and 300,000 records
//! of the 250-field Account cost no memory until mutated. References point at generated
//! records of served objects (Contact.AccountId at an Account), or at Ids of the right key
//! prefix for objects the org does not serve. REST renders compound fields (`BillingAddress`)
//! as nested objects beside their components; Bulk refuses them.
//!
//! # Limits of real orgs
//! - A request line (method, target, HTTP version) over [`OrgConfig::max_request_line`] bytes
//!   (16,384 by default, `--max-request-line`) answers `414 URI Too Long` with the HTML body
//!   Salesforce's front end sends, before authentication: the full SELECT of Wide__c does not
//!   fit. (Salesforce's POST-able alternatives are the Bulk 2.0 job body and a Composite
//!   query subrequest, whose url travels in the POST body; this fake serves both.)
//! - SOQL naming a field an object lacks (SystemModstamp on AccountHistory) fails with 400
//!   `INVALID_FIELD` "No such column …"; ContentDocumentLink without its filter fails with 400
//!   `MALFORMED_QUERY` "Implementation restriction: …"; getUpdated/getDeleted on an object that
//!   is not replicateable fail with 400 "sObject type X is not replicable"; a Bulk job on
//!   CaseStatus fails with 400 `INVALIDENTITY`, and one selecting a compound field with 400
//!   `API_ERROR`.
//!
//! # Faults
//! `POST /__admin/faults` (no auth, not counted) or [`Org::set_faults`] switches the
//! [`Faults`] in force: `{"fail_every":N,"fail_status":503|500|403,"truncate_every":N,
//! "garble_every":N,"slow_ms":N,"token_ttl_ms":N|null,"query_timeout_above":N,
//! "bulk_order_by_limit":N,"nul_every":N,"replication_id_limit":N,
//! "delete_log_start":"2024-05-01T00:00:00Z","write_ms":N,"lock_wait_ms":N,
//! "commit_then_drop_every":N,"latency_ms":N}` (every field optional, missing ones off or
//! Salesforce's default), plus the one-shot actions `"expire_tokens":true`
//! ([`Org::expire_all_tokens`]) and `"expire_cursors":true` ([`Org::expire_all_cursors`]). It
//! answers the faults now in force and the [`FaultStats`]; `GET /__admin/faults` answers the
//! same without changing anything. The flags `--query-timeout-above`,
//! `--bulk-order-by-limit`, `--nul-every`, `--replication-id-limit` and `--delete-log-start`
//! set the same from the start:
//! - `query_timeout_above`: REST queries and `COUNT()`s whose WHERE matches more records
//!   answer 400 `[{"message":"Your query request was running for too long.",
//!   "errorCode":"QUERY_TIMEOUT"}]`, so a client halving its SystemModstamp window succeeds.
//! - `bulk_order_by_limit`: Bulk jobs with ORDER BY over more records end `Failed`
//!   ("Retried more than 15 times").
//! - `nul_every`: records 0, N, 2N… carry a NUL inside Description and Title.
//! - `replication_id_limit` (600,000 by default): more Ids in a getUpdated/getDeleted window
//!   answer 400 `EXCEEDED_ID_LIMIT`.
//! - `delete_log_start`: getDeleted's `earliestDateAvailable` is never earlier, and older
//!   deletions are gone from it.
//!
//! # A network: latency, bandwidth, gzip, bytes on the wire
//! Against a real org every call crosses the internet; [`network`] models it for every API
//! call (everything under `/services`: the token endpoint, describe, query, queryMore, every
//! Bulk 2.0 job call and result download, limits, Composite; not the `/__admin/` hooks):
//! - [`Faults::latency_ms`] (`--latency-ms`, or `"latency_ms"` in `POST /__admin/faults`)
//!   delays each call that long before it is answered.
//! - [`OrgConfig::bandwidth_mbps`] (`--bandwidth-mbps`) sends response bodies over one link
//!   of that many megabits per second, which responses sent at once share, in pieces of
//!   [`network::PACE_CHUNK`] bytes.
//! - gzip: a request with `Accept-Encoding: gzip` gets a gzip body (`Content-Encoding: gzip`,
//!   chunked), as Salesforce answers REST and Bulk 2.0 calls; [`OrgConfig::gzip`] `false`
//!   (`--no-gzip`) always answers identity bodies. Pacing applies to the compressed bytes.
//! - [`FaultStats::wire_bytes`] counts the response body bytes sent for API calls, after
//!   gzip: `GET /__admin/faults` answers it as `stats.wire_bytes`, in process
//!   `org.fault_stats().wire_bytes`.
//!
//! # Fields that come and go
//! `POST /__admin/fields` (no auth, not counted) or [`Org::change_fields`]:
//! `{"object":"Contact","add":{"name":"Tier__c","type":"picklist","values":["A","B"],
//! "existing":"null"|"generated"},"hide":["Email"],"show":["Title"]}` adds a custom field
//! (existing records read null unless `"generated"`; no SystemModstamp moves), hides fields
//! from the integration user (describe omits them, SOQL naming them fails with
//! `INVALID_FIELD`) and shows them again. It answers the object's field count and hidden
//! fields.
//!
//! # Writes: sObject Collections
//! `POST /composite/sobjects` (create), `PATCH` (update), `PATCH
//! /composite/sobjects/{Object}/{Field}` (upsert on the external Id field that
//! [`OrgConfig::external_id_field`] adds) and `DELETE ?ids=` (soft delete), in process
//! [`Org::write`]. Up to [`MAX_RECORDS`] records a call, one API call each; results in request
//! order with Salesforce's per-record errors, `allOrNone` rolling everything back. Writes stamp
//! SystemModstamp like mutations do and show in query, queryAll, getUpdated, getDeleted and
//! Bulk. `POST /__admin/validation` ([`Org::change_validation`]) adds or lifts validation
//! rules; the faults `write_ms`, `lock_wait_ms` (row locks on a Contact's Account) and
//! `commit_then_drop_every` (apply, then close the connection unanswered) make writes collide
//! and lose their answers. [`Org::find_by_external_id`] and [`Org::record_by_id`] let tests
//! check the org.
//!
//! # Composite: a write and a read in one call
//! `POST /composite` `{"allOrNone":false,"compositeRequest":[{"method","url","referenceId",
//! "body"},…]}` runs up to 25 subrequests in order, each through the same dispatch as the
//! same request made directly (a collections write takes the same row locks, waits the same
//! `write_ms`; a query sees the writes before it), and answers HTTP 200
//! `{"compositeResponse":[{"body","httpHeaders":{},"httpStatusCode","referenceId"},…]}`, a
//! failed subrequest with its own status and error array while the others still run. The
//! whole call is one API call, and one write call for `commit_then_drop_every`. Subrequests
//! may name the sObject resources, query/queryAll/queryMore and sObject Collections (other
//! urls answer their subrequest 404 `NOT_FOUND`). More than 25 subrequests, or more than 5
//! collections and query ones, run nothing: 200 with one subresponse, 400 `LIMIT_EXCEEDED`,
//! `referenceId` null. A subrequest lacking `method`, `url` or `referenceId` refuses the call
//! with 400 `JSON_PARSER_ERROR`. Not supported, refused whole with 400 `UNSUPPORTED_BY_FAKE`
//! before anything runs: reference notation (`@{refId.field}`) and `allOrNone: true`;
//! `collateSubrequests` is ignored (subrequests always run in order).
//!
//! # Keeping in sync: mutations, getUpdated/getDeleted, Bulk 2.0
//! - `POST /__admin/mutate` (no auth, not counted toward API usage) or [`Org::mutate`]
//!   changes a running org: `{"object":"Contact","update":N,"delete":N,"purge":N,
//!   "create":N,"vanish":N,"formula":N,"same_modstamp":false}`, every count optional. It
//!   answers the affected Ids per category (`updated`, `deleted`, `purged`, `created`,
//!   `vanished`, and `formula` when any) and the `systemModstamp` they all got. Update changes
//!   field values (Contact and Lead: LastName, Title, Email, Engagement_Score__c; Account and
//!   others: Name, Phone; plain objects: Name, Status__c, Amount__c) plus LastModifiedDate
//!   and SystemModstamp; delete sets IsDeleted
//!   (queryAll and getDeleted still see the record); purge removes deleted records from
//!   queryAll but keeps them in getDeleted; create adds records with the next Ids; vanish
//!   removes records without a trace; formula recalculates the formula fields of N records
//!   (all when N is large) without touching SystemModstamp. Objects without IsDeleted can
//!   only vanish. Each call's stamp is the wall clock in whole seconds, after every generated
//!   stamp and at least a second after the previous call's; `same_modstamp` reuses the
//!   previous call's stamp. Queries that start afterwards see the change; open query cursors
//!   and Bulk jobs keep the snapshot they were created with. [`Org::count`], [`Org::records`]
//!   and [`Org::record_json`] follow mutations.
//! - `GET /sobjects/{Object}/updated/?start=&end=` and `/deleted/` (see `org::replication`):
//!   minute-truncated `[start, end)` windows of at most 30 days; errors are 400
//!   `INVALID_REPLICATION_DATE`, `MISSING_ARGUMENT` or `EXCEEDED_ID_LIMIT`. getUpdated reads
//!   SystemModstamp, else LastModifiedDate, else CreatedDate.
//! - `/jobs/query` (see [`bulk`]): jobs run against a snapshot when created and complete
//!   after [`OrgConfig::bulk_job_delay`]; results are CSV chunks of `maxRecords` rows
//!   (default [`bulk::DEFAULT_MAX_RECORDS`]) chained by `Sforce-Locator`, `null` on the last.

pub mod auth;
mod base64;
pub mod bulk;
pub mod calendar;
pub mod cursor;
pub mod data;
pub mod describe;
pub mod error;
pub mod faults;
pub mod jwt;
pub mod network;
mod org;
pub mod render;
pub mod routes;
pub mod soql;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use data::Shape;
pub use faults::{FailStatus, FaultStats, Faults};
pub use org::{
    FieldChange, FieldsRequest, FieldsResponse, MAX_RECORDS, MutateRequest, MutateResponse,
    NewField, Operation, Org, ROLLED_BACK, RecordError, RecordResult, ValidationRequest,
    ValidationResponse, WriteCall,
};

/// Everything that shapes an org: its data and its credentials.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// Which objects the org serves: the two classic ones, or a real org's (see
    /// [`data::schema::real`]).
    pub shape: Shape,
    /// Number of generated Account records.
    pub accounts: u32,
    /// Number of generated Contact records.
    pub contacts: u32,
    /// Number of generated records of other objects, by API name (any case); objects not
    /// named get none. An `Account` or `Contact` entry overrides `accounts` or `contacts`.
    /// With [`Self::plain_objects`], a `Plain` entry ([`data::schema::PLAIN_GROUP`]) counts
    /// every plain object that is not named on its own.
    pub records: BTreeMap<String, u32>,
    /// Adds this many plain custom objects to the shape's, `Plain_01__c` … `Plain_NN__c` (at
    /// most [`data::schema::MAX_PLAIN_OBJECTS`]): ordinary replicateable custom objects (see
    /// the crate docs). 0, the default, adds none.
    pub plain_objects: u32,
    /// Same seed, same data, byte for byte.
    pub seed: u64,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    /// The one refresh token the `refresh_token` grant accepts.
    pub refresh_token: String,
    /// The public key (PKCS#1) of the certificate uploaded to the connected app, which JWT
    /// bearer assertions must be signed for (see [`jwt`]); set from a PEM certificate with
    /// [`OrgConfig::with_jwt_cert`] (`--jwt-cert`). `None` refuses every assertion.
    pub jwt_public_key: Option<Vec<u8>>,
    /// Whether `username` is pre-authorized for the connected app (JWT bearer); when not,
    /// assertions get "user hasn't approved this consumer" (`--jwt-not-preauthorized`).
    pub jwt_preauthorized: bool,
    /// The `aud` JWT bearer assertions must carry; `None`: this server's own URL. A sandbox
    /// expects `https://test.salesforce.com` (`--jwt-audience`).
    pub jwt_audience: Option<String>,
    /// How far the org's clock runs ahead of its clients' when it checks an assertion's `exp`,
    /// as when the client's clock is behind (`--jwt-clock-ahead`).
    pub jwt_clock_ahead: Duration,
    /// Daily API request limit; calls past it get 403 `REQUEST_LIMIT_EXCEEDED`.
    pub api_limit: u64,
    /// How long a query locator stays valid after the query ran.
    pub locator_ttl: Duration,
    /// `instance_url` handed out with tokens; `None` derives it from the request's Host.
    pub instance_url: Option<String>,
    /// How long a Bulk 2.0 query job takes: `UploadComplete` for the first half,
    /// `InProgress` for the second, then `JobComplete` (or `Failed`). Zero completes jobs
    /// at once.
    pub bulk_job_delay: Duration,
    /// Faults injected from the start (see [`faults`]); switchable later with
    /// [`Org::set_faults`] or `POST /__admin/faults`.
    pub faults: Faults,
    /// Requests whose request line (method, target and HTTP version) is longer than this
    /// many bytes get `414 URI Too Long`, as Salesforce's 16,384-byte limit does; 0 lets any
    /// length through.
    pub max_request_line: usize,
    /// Adds this external Id field (custom text(36), unique, case-insensitive) to every
    /// createable object, for upserts through sObject Collections; `None` (the default)
    /// leaves every describe as it was.
    pub external_id_field: Option<String>,
    /// Megabits (10^6 bits) per second of the one link API response bodies cross, shared by
    /// responses sent at once, after gzip (see [`network`]). `None` (the default) does not pace.
    pub bandwidth_mbps: Option<f64>,
    /// Compresses API responses with gzip when the request's `Accept-Encoding` allows it, as
    /// Salesforce does (the default); `false` ignores `Accept-Encoding` and always sends
    /// identity bodies, to measure a client without compression.
    pub gzip: bool,
}

impl OrgConfig {
    /// The schema the org starts with: the shape's objects, then [`Self::plain_objects`] plain
    /// ones, with [`Self::external_id_field`] on every createable object.
    ///
    /// # Panics
    /// When [`Self::plain_objects`] is above [`data::schema::MAX_PLAIN_OBJECTS`].
    pub fn schema(&self) -> data::Schema {
        let schema = data::Schema::new(self.shape).with_plain_objects(self.plain_objects);
        match &self.external_id_field {
            Some(field) => schema.with_external_id(field),
            None => schema,
        }
    }

    /// How many records each object of `schema` starts with, in schema order.
    pub fn record_counts(&self, schema: &data::Schema) -> Vec<u32> {
        let named = |name: &str| {
            self.records
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, &c)| c)
        };
        schema
            .kinds()
            .map(|k| {
                let name = schema.def(k).name;
                match (named(name), name) {
                    (Some(count), _) => count,
                    (None, "Account") => self.accounts,
                    (None, "Contact") => self.contacts,
                    (None, plain) if data::schema::is_plain_object(plain) => {
                        named(data::schema::PLAIN_GROUP).unwrap_or(0)
                    }
                    (None, _) => 0,
                }
            })
            .collect()
    }

    /// Names in [`Self::records`] that are not objects of the configured shape and plain
    /// objects (`Plain` is one when there are plain objects).
    pub fn unknown_objects(&self) -> Vec<String> {
        let schema = data::Schema::new(self.shape).with_plain_objects(self.plain_objects);
        self.records
            .keys()
            .filter(|n| schema.object(n).is_none())
            .filter(|n| {
                self.plain_objects == 0 || !n.eq_ignore_ascii_case(data::schema::PLAIN_GROUP)
            })
            .cloned()
            .collect()
    }
}

impl OrgConfig {
    /// Accepts JWT bearer assertions signed by the key of `pem`, a PEM certificate.
    ///
    /// # Errors
    /// No PEM certificate, or not an RSA one.
    pub fn with_jwt_cert(mut self, pem: &str) -> Result<Self, String> {
        self.jwt_public_key = Some(jwt::public_key(pem)?);
        Ok(self)
    }
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            shape: Shape::Classic,
            accounts: 100,
            contacts: 1000,
            records: BTreeMap::new(),
            plain_objects: 0,
            seed: 1,
            client_id: "demo".to_owned(),
            client_secret: "demo".to_owned(),
            username: "demo@example.com".to_owned(),
            password: "demo".to_owned(),
            refresh_token: "demo-refresh".to_owned(),
            jwt_public_key: None,
            jwt_preauthorized: true,
            jwt_audience: None,
            jwt_clock_ahead: Duration::ZERO,
            api_limit: 1_000_000,
            locator_ttl: Duration::from_secs(2 * 24 * 3600),
            instance_url: None,
            bulk_job_delay: Duration::from_millis(200),
            faults: Faults::default(),
            max_request_line: 16_384,
            external_id_field: None,
            bandwidth_mbps: None,
            gzip: true,
        }
    }
}

/// Serves `org` on `listener` until `shutdown` completes.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    org: Arc<Org>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, routes::router(org))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the fake Salesforce org")
}

/// An org served on a local port in a background task; stopped on drop.
#[derive(Debug)]
pub struct FakeOrg {
    addr: SocketAddr,
    org: Arc<Org>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts an org on `127.0.0.1:0` in a background task.
///
/// # Errors
/// When no local port can be bound.
pub async fn spawn(config: OrgConfig) -> anyhow::Result<FakeOrg> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0 for the fake Salesforce org")?;
    let addr = listener.local_addr()?;
    let org = Arc::new(Org::new(config));
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        Arc::clone(&org),
        stop.clone().cancelled_owned(),
    ));
    Ok(FakeOrg {
        addr,
        org,
        stop,
        task: Some(task),
    })
}

impl FakeOrg {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn org(&self) -> &Arc<Org> {
        &self.org
    }

    /// Stops accepting requests and waits for the server task to end.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.context("joining the fake org's server task")?,
            None => Ok(()),
        }
    }
}

impl Drop for FakeOrg {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
