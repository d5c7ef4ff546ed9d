//! A bare HTTP/1.1 client for the fake org on localhost (its admin hooks and a few API calls),
//! so that the benchmark needs no HTTP client crate.

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The fake org's own count of the API calls it answered and of the response body bytes it
/// sent (after gzip), from `GET /__admin/faults`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wire {
    pub api_calls: u64,
    pub bytes: u64,
}

/// Reads [`Wire`] off the fake org on `port`.
///
/// # Errors
/// The fake did not answer, or answered something else.
pub(crate) async fn wire(port: u16) -> anyhow::Result<Wire> {
    let body = http(port, "GET", "/__admin/faults", "").await?;
    let json: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("/__admin/faults answered {body}"))?;
    let field = |v: &serde_json::Value| v.as_u64().context("/__admin/faults lacks a count");
    Ok(Wire {
        api_calls: field(&json["api_used"])?,
        bytes: field(&json["stats"]["wire_bytes"])?,
    })
}

pub(crate) async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<String> {
    http_with(port, method, path, body, None).await
}

/// A bare HTTP/1.1 request to the fake org on localhost; returns the body.
pub(crate) async fn http_with(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 2"), "{method} {path}: {head}");
    // A chunked answer: the chunks' sizes stand on lines of their own.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_owned())
}
