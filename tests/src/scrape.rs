//! Reading a Prometheus endpoint as Prometheus would: `GET /metrics`, then the samples.

use std::net::SocketAddr;

/// The body of `GET http://addr/metrics`; an error unless it answers 200 in a text format.
///
/// # Errors
/// No answer, another status, or another content type.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "GET /metrics answered {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        content_type.starts_with("application/openmetrics-text")
            || content_type.starts_with("text/plain"),
        "GET /metrics answered content type {content_type:?}"
    );
    Ok(response.text().await?)
}

/// The value of the sample `name{labels}` (labels in the order the exposition writes them;
/// none for a plain series), if the text has it.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    };
    common::metrics::sample(text, &series)
}

/// Whether the text declares the metric family `family` (its `# TYPE` line).
pub fn declares(text: &str, family: &str) -> bool {
    text.lines()
        .any(|l| l.strip_prefix("# TYPE ").and_then(|r| r.split(' ').next()) == Some(family))
}
