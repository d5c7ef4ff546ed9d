//! Salesforce datetimes: parsing what the APIs return and formatting what SOQL accepts.
//!
//! REST returns `2013-05-20T20:49:32.000+0000` (offset without a colon); Bulk CSV may return
//! `…Z`; SOQL literals are unquoted `2013-05-20T20:49:32Z`. All are UTC instants.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// Why a string is not a Salesforce datetime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Salesforce datetime (expected e.g. 2013-05-20T20:49:32.000+0000)")]
pub struct DateTimeError(pub String);

/// Parses a datetime as the REST API, the Bulk API or a SOQL literal writes it.
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, DateTimeError> {
    // %z accepts both +0000 and +00:00; RFC 3339 covers the Z form.
    DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|dt| dt.with_timezone(&Utc))
        .map_err(|_| DateTimeError(s.to_owned()))
}

/// Formats an instant as the REST API does: `2013-05-20T20:49:32.000+0000`.
pub fn format_rest(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Formats an instant as a SOQL datetime literal: `2013-05-20T20:49:32Z` (unquoted in SOQL).
pub fn format_soql(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_every_form_salesforce_writes() {
        let want = Utc.with_ymd_and_hms(2013, 5, 20, 20, 49, 32).unwrap();
        for s in [
            "2013-05-20T20:49:32.000+0000",
            "2013-05-20T20:49:32.000Z",
            "2013-05-20T20:49:32Z",
            "2013-05-20T22:49:32.000+0200",
            "2013-05-20T15:49:32-05:00",
        ] {
            assert_eq!(parse_datetime(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_datetime() {
        for s in ["2013-05-20", "yesterday", "", "2013-05-20T20:49:32"] {
            assert_eq!(parse_datetime(s), Err(DateTimeError(s.to_owned())), "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let dt = Utc.with_ymd_and_hms(2024, 1, 15, 10, 20, 30).unwrap();
        assert_eq!(format_rest(dt), "2024-01-15T10:20:30.000+0000");
        assert_eq!(format_soql(dt), "2024-01-15T10:20:30Z");
        assert_eq!(parse_datetime(&format_rest(dt)), Ok(dt));
    }
}
