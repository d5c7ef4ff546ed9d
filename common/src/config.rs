//! Settings both binaries share: where the broker and the database are.
//!
//! URLs hold passwords, so they are kept as [`SecretString`] from the moment they are read, and
//! only [`redact_url`]'s form of them is ever printed.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Broker and database locations, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// RabbitMQ URL. The vhost is the path (`%2f` is the default vhost `/`); use `amqps://` for
    /// TLS, with `?cacertfile=<PEM file>` to trust a private CA.
    #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", value_parser = parse_secret, hide_env_values = true, hide_default_value = true)]
    pub amqp_url: SecretString,

    /// PostgreSQL URL, e.g. `postgres://user:password@host:5432/db?sslmode=verify-full`.
    /// `sslmode` is disable, prefer (default), require, verify-ca or verify-full, as in libpq;
    /// `sslrootcert=<PEM file>` trusts a private CA.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres", value_parser = parse_secret, hide_env_values = true, hide_default_value = true)]
    pub database_url: SecretString,
}

/// clap value parser that never lets the plain value out again.
pub fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// Parses a percentage between 1 and 100, with or without `%` (clap value parser).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (1.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage between 1 and 100")),
    }
}

/// Parses `30s`, `500ms`, `5m`, `2h`, `14d` or a bare number of seconds (clap value parser).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 500ms, 5m, 2h or 14d"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        "h" => Ok(std::time::Duration::from_secs(n * 3600)),
        "d" => Ok(std::time::Duration::from_secs(n * 86_400)),
        _ => Err(format!(
            "{s:?} is not a duration such as 30s, 500ms, 5m, 2h or 14d"
        )),
    }
}

/// A setting whose value cannot be used; the message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
}

/// Parses a URL setting and checks its scheme, without echoing a password in the error.
pub fn check_url(
    setting: &'static str,
    value: &SecretString,
    schemes: &[&str],
    example: &str,
) -> Result<Url, SettingError> {
    let url = Url::parse(value.expose_secret()).map_err(|e| SettingError {
        setting,
        problem: format!("not a valid URL ({e}); expected something like {example}"),
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(SettingError {
            setting,
            problem: format!(
                "scheme {:?} is not one of {}; expected something like {example}",
                url.scheme(),
                schemes.join(", ")
            ),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        // Not echoed: without a host (`postgres:/user:pw@db`) the password is in the path,
        // where redact_url cannot see it.
        return Err(SettingError {
            setting,
            problem: format!(
                "URL without a host (is a slash missing after \"{}:\"?); expected something like {example}",
                url.scheme()
            ),
        });
    }
    Ok(url)
}

/// A URL-ish setting value safe to show even when it does not parse: anything between `://`
/// and the last `@` (user and password) becomes `***`, and so does a query string.
pub fn redact_url_text(value: &str) -> String {
    match Url::parse(value) {
        Ok(url) => redact_url(&url),
        Err(_) => {
            let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
            let rest = rest
                .rsplit_once('@')
                .map_or(rest.to_owned(), |(_, host)| format!("***@{host}"));
            let rest = rest
                .split_once('?')
                .map_or(rest.clone(), |(path, _)| format!("{path}?***"));
            if scheme.is_empty() {
                rest
            } else {
                format!("{scheme}://{rest}")
            }
        }
    }
}

/// The URL with its password replaced by `***`, safe to log.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    // Query parameters may carry passwords too (`?password=`): show their names only.
    // (Values are masked, not dropped, so the shape of the URL stays recognisable.)
    if shown.query().is_some() {
        let names: Vec<String> = shown
            .query_pairs()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        shown.set_query(Some(&names.join("&")));
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_name_the_setting_and_hide_the_password() {
        let err = check_url(
            "AMQP_URL",
            &"http://u:hunter2@h/".into(),
            &["amqp", "amqps"],
            "amqp://guest:guest@localhost:5672/%2f",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("AMQP_URL: scheme \"http\" is not one of amqp, amqps"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        let err = check_url(
            "DATABASE_URL",
            &"not a url hunter2".into(),
            &["postgres", "postgresql"],
            "postgres://…",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL: not a valid URL"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
        let err = check_url(
            "DATABASE_URL",
            &"postgres:/me:hunter2@db/x".into(),
            &["postgres", "postgresql"],
            "postgres://…",
        )
        .unwrap_err();
        assert!(err.to_string().contains("URL without a host"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn unparsable_urls_are_shown_without_credentials() {
        assert_eq!(
            redact_url_text("https://me:hunter2@exa mple.com/x"),
            "https://***@exa mple.com/x"
        );
        assert_eq!(redact_url_text("not a url"), "not a url");
        assert!(!redact_url_text("http://u:hunter2@[bad/?password=hunter3").contains("hunter"));
    }

    #[test]
    fn redaction_hides_passwords() {
        let url =
            Url::parse("postgres://me:hunter2@db:5432/x?sslmode=require&password=hunter3").unwrap();
        let shown = redact_url(&url);
        assert_eq!(
            shown,
            "postgres://me:***@db:5432/x?sslmode=***&password=***"
        );
    }
}
