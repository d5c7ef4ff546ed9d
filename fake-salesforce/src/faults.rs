//! Fault injection for the data calls that page through records (`query`, `queryAll` and
//! `query/<locator>`): failures every Nth call, bodies cut off mid-page, garbled bodies, slow
//! answers, expiring access tokens and query locators; and the latency of a distant org on
//! every API call (`latency_ms`, applied in [`crate::network`]). And the conditions of real
//! orgs that a client must survive: queries that time out over too many records (REST
//! `QUERY_TIMEOUT`, Bulk jobs with ORDER BY), NUL characters in text, a getUpdated/getDeleted
//! Id limit and a trimmed delete log. Every one is off (or Salesforce's default) unless set.
//!
//! Faults start from [`OrgConfig::faults`](crate::OrgConfig::faults) (the CLI flags) and can be
//! switched while the org runs, with [`Org::set_faults`](crate::Org::set_faults) in process or
//! `POST /__admin/faults` over HTTP. [`FaultStats`] counts what was injected, so a test can
//! check that its fault really happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, json_response};

/// The status a failing data call answers with, each the way Salesforce (or the proxy in front
/// of it) sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(try_from = "u16", into = "u16")]
pub enum FailStatus {
    /// 503 with `[{"errorCode":"SERVER_UNAVAILABLE",…}]`.
    #[default]
    #[value(name = "503")]
    Unavailable,
    /// 500 with an HTML page, as a load balancer sends it.
    #[value(name = "500")]
    InternalHtml,
    /// 403 with `[{"errorCode":"REQUEST_LIMIT_EXCEEDED",…}]`.
    #[value(name = "403")]
    LimitExceeded,
}

impl TryFrom<u16> for FailStatus {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, String> {
        match code {
            503 => Ok(FailStatus::Unavailable),
            500 => Ok(FailStatus::InternalHtml),
            403 => Ok(FailStatus::LimitExceeded),
            other => Err(format!("fail_status {other} is not one of 503, 500, 403")),
        }
    }
}

impl From<FailStatus> for u16 {
    fn from(s: FailStatus) -> u16 {
        match s {
            FailStatus::Unavailable => 503,
            FailStatus::InternalHtml => 500,
            FailStatus::LimitExceeded => 403,
        }
    }
}

impl FailStatus {
    /// The response a failing call gets.
    pub fn response(self) -> Response {
        match self {
            FailStatus::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server temporarily unavailable. Please try again later.",
            )
            .into_response(),
            FailStatus::InternalHtml => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
                "<html><head><title>Error</title></head><body><h1>An internal server error \
                 occurred.</h1><p>Please try again later.</p></body></html>",
            )
                .into_response(),
            FailStatus::LimitExceeded => ApiError::limit_exceeded().into_response(),
        }
    }
}

/// Which faults are on. The default injects none. The fields after `token_ttl_ms` are left
/// out of the JSON form while off, so reports read as before they existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Every Nth data call (counting query, queryAll and queryMore calls from 1) fails with
    /// [`Self::fail_status`]; 0 never fails.
    pub fail_every: u64,
    /// How a failing call answers.
    pub fail_status: FailStatus,
    /// Every Nth data call answers 200 with a `Content-Length` for the whole page, sends half
    /// of the body and closes the connection; 0 never. A call picked by both `fail_every` and
    /// this fails.
    pub truncate_every: u64,
    /// Every Nth data call answers 200 with the whole body, full length, but one byte in the
    /// middle replaced by NUL, so it is not valid JSON (a bit flipped on the way, a broken
    /// proxy); 0 never. A call picked by `fail_every` or `truncate_every` gets that instead.
    pub garble_every: u64,
    /// Milliseconds every data call waits before answering.
    pub slow_ms: u64,
    /// Access tokens are refused (401 `INVALID_SESSION_ID`) this many milliseconds after they
    /// were issued; `None` keeps them valid for ever.
    pub token_ttl_ms: Option<u64>,
    /// REST `query`/`queryAll` (`COUNT()` included) whose WHERE matches more than this many
    /// records answer 400 `QUERY_TIMEOUT` "Your query request was running for too long.", as a
    /// non-selective query does on a large object; narrowing the SystemModstamp window makes
    /// it pass. `None` never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_timeout_above: Option<u64>,
    /// Bulk query jobs with ORDER BY (which disables PK chunking) over more than this many
    /// records end `Failed` like a job that timed out; `None` never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_order_by_limit: Option<u64>,
    /// Every Nth record (those whose index is a multiple of N, record 0 first) carries a NUL
    /// character (`\u0000`) inside its Description and Title, in REST and Bulk alike; 0 never.
    #[serde(skip_serializing_if = "is_zero")]
    pub nul_every: u64,
    /// getUpdated/getDeleted answering more Ids than this fail with `EXCEEDED_ID_LIMIT`;
    /// `None` is Salesforce's 600,000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_id_limit: Option<u64>,
    /// The delete log was trimmed up to this instant (an emptied recycle bin):
    /// getDeleted's `earliestDateAvailable` is never earlier, and deletions before it are no
    /// longer reported. ISO 8601 in JSON (`2024-05-01T00:00:00Z`), epoch millis here; `None`
    /// keeps the 15 days Salesforce keeps.
    #[serde(skip_serializing_if = "Option::is_none", with = "datetime_millis")]
    pub delete_log_start: Option<i64>,
    /// Milliseconds every sObject Collections write (a direct call or a Composite subrequest)
    /// takes while it holds its row locks (see `org::write::locks`), so that concurrent calls
    /// can collide; 0 answers at once.
    #[serde(skip_serializing_if = "is_zero")]
    pub write_ms: u64,
    /// Milliseconds a record waits for a parent locked by another call in flight before it
    /// fails with `UNABLE_TO_LOCK_ROW`; 0 fails at once (Salesforce waits about 10 s).
    #[serde(skip_serializing_if = "is_zero")]
    pub lock_wait_ms: u64,
    /// Every Nth write call (sObject Collections or Composite, counted from 1) applies its
    /// writes and then closes the connection without an answer, so the client cannot know it
    /// committed; 0 never.
    #[serde(skip_serializing_if = "is_zero")]
    pub commit_then_drop_every: u64,
    /// Milliseconds every API call waits before it is answered: everything under
    /// `/services` (the OAuth token endpoint, describe, query, queryMore, every Bulk 2.0 job
    /// call and result download, limits, Composite, …), not the `/__admin/` hooks. A network
    /// round trip to a distant org, unlike `slow_ms`, which slows query calls only and adds
    /// to this. 0 answers at once.
    #[serde(skip_serializing_if = "is_zero")]
    pub latency_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `Option<i64>` epoch millis as a REST datetime string.
mod datetime_millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::calendar::write_datetime;
    use crate::soql::parse_datetime;

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => {
                let mut out = String::new();
                write_datetime(&mut out, *ms);
                s.serialize_str(&out)
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            parse_datetime(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a datetime like 2024-05-01T00:00:00Z"
                ))
            })
        })
        .transpose()
    }
}

impl Faults {
    pub fn token_ttl(&self) -> Option<Duration> {
        self.token_ttl_ms.map(Duration::from_millis)
    }
}

/// What the org has injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Data calls seen (the counter `fail_every` and `truncate_every` use).
    pub data_calls: u64,
    /// Calls answered with the fail status.
    pub failed: u64,
    /// Calls whose body was cut off.
    pub truncated: u64,
    /// Calls whose body was garbled.
    pub garbled: u64,
    /// Calls refused with 401 `INVALID_SESSION_ID` (expired, unknown or missing token).
    pub sessions_refused: u64,
    /// queryMore calls refused with 400 `INVALID_QUERY_LOCATOR`.
    pub locators_refused: u64,
    /// REST queries refused with 400 `QUERY_TIMEOUT`.
    pub query_timeouts: u64,
    /// Bulk query jobs failed for ORDER BY over too many records.
    pub bulk_timeouts: u64,
    /// Write calls seen, sObject Collections and Composite (the counter
    /// `commit_then_drop_every` uses).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub write_calls: u64,
    /// Write calls whose connection was dropped after they committed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// Bytes on the wire: the response body bytes sent for every call under `/services`
    /// (API calls, refused ones too; not the `/__admin/` hooks), as sent, that is after gzip
    /// when the response was compressed. Headers and chunked framing are not counted.
    #[serde(default)]
    pub wire_bytes: u64,
}

/// The counters behind [`FaultStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub data_calls: AtomicU64,
    pub failed: AtomicU64,
    pub truncated: AtomicU64,
    pub garbled: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub locators_refused: AtomicU64,
    pub query_timeouts: AtomicU64,
    pub bulk_timeouts: AtomicU64,
    pub write_calls: AtomicU64,
    pub dropped: AtomicU64,
    pub wire_bytes: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> FaultStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultStats {
            data_calls: get(&self.data_calls),
            failed: get(&self.failed),
            truncated: get(&self.truncated),
            garbled: get(&self.garbled),
            sessions_refused: get(&self.sessions_refused),
            locators_refused: get(&self.locators_refused),
            query_timeouts: get(&self.query_timeouts),
            bulk_timeouts: get(&self.bulk_timeouts),
            write_calls: get(&self.write_calls),
            dropped: get(&self.dropped),
            wire_bytes: get(&self.wire_bytes),
        }
    }

    pub fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What to do with data call number `n` (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    Pass,
    Fail(FailStatus),
    Truncate,
    Garble,
}

impl Faults {
    pub fn injection(&self, n: u64) -> Injection {
        let hits = |every: u64| every > 0 && n.is_multiple_of(every);
        if hits(self.fail_every) {
            Injection::Fail(self.fail_status)
        } else if hits(self.truncate_every) {
            Injection::Truncate
        } else if hits(self.garble_every) {
            Injection::Garble
        } else {
            Injection::Pass
        }
    }
}

/// Re-sends `response` with its full `Content-Length` but only the first half of its body,
/// then fails the body stream so the server closes the connection mid-page.
pub async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, "[]".to_owned());
    };
    let half = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    use futures::StreamExt as _;
    // The pause lets the server flush the headers and the first half before the error
    // makes it drop the connection.
    let rest = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault injection: body truncated",
        ))
    });
    let chunks = futures::stream::once(async move { Ok(half) }).chain(rest);
    Response::from_parts(parts, Body::from_stream(chunks))
}

/// Replaces `response` with one that sends nothing: its body fails before the first byte, so
/// the server closes the connection without writing the status line (the head is only
/// flushed with the body), and a `Content-Length` makes sure a client that did get a head
/// still sees the body cut off.
pub fn drop_connection(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1024));
    let failed = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "fault injection: committed, then dropped the connection",
        ))
    });
    Response::from_parts(parts, Body::from_stream(failed))
}

/// Re-sends `response` whole, with its full length, but with the middle byte replaced by NUL:
/// never valid JSON (NUL is refused both inside and outside strings).
pub async fn garble(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, "[]".to_owned());
    };
    let mut garbled = bytes.to_vec();
    let middle = garbled.len() / 2;
    if let Some(byte) = garbled.get_mut(middle) {
        *byte = 0;
    }
    Response::from_parts(parts, Body::from(garbled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_call_is_picked_and_failing_wins() {
        let f = Faults {
            fail_every: 3,
            truncate_every: 2,
            ..Faults::default()
        };
        let picked: Vec<_> = (1..=6).map(|n| f.injection(n)).collect();
        use Injection::*;
        let fail = Fail(FailStatus::Unavailable);
        assert_eq!(picked, [Pass, Truncate, fail, Truncate, Pass, fail]);
        assert_eq!(Faults::default().injection(7), Pass);
        let g = Faults {
            garble_every: 2,
            ..Faults::default()
        };
        assert_eq!(g.injection(4), Garble);
    }

    #[test]
    fn faults_read_from_json_with_defaults() {
        let f: Faults = serde_json::from_str(r#"{"fail_every":2,"fail_status":500}"#).unwrap();
        assert_eq!(f.fail_status, FailStatus::InternalHtml);
        assert_eq!(f.token_ttl(), None);
        assert!(serde_json::from_str::<Faults>(r#"{"fail_status":404}"#).is_err());
        let back = serde_json::to_value(&f).unwrap();
        assert_eq!(back["fail_status"], 500);
    }

    #[test]
    fn real_org_conditions_stay_out_of_the_json_while_off() {
        let off = serde_json::to_value(Faults::default()).unwrap();
        assert_eq!(
            off.as_object().unwrap().keys().collect::<Vec<_>>(),
            [
                "fail_every",
                "fail_status",
                "garble_every",
                "slow_ms",
                "token_ttl_ms",
                "truncate_every"
            ]
        );
        let on: Faults = serde_json::from_str(
            r#"{"query_timeout_above":5,"nul_every":3,"delete_log_start":"2024-05-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(on.query_timeout_above, Some(5));
        assert_eq!(on.delete_log_start, Some(1_714_521_600_000));
        let back = serde_json::to_value(&on).unwrap();
        assert_eq!(back["delete_log_start"], "2024-05-01T00:00:00.000+0000");
        assert_eq!(back["nul_every"], 3);
        assert!(serde_json::from_str::<Faults>(r#"{"delete_log_start":"May"}"#).is_err());
    }
}
