//! Instants as trailscope reads and prints them: UTC milliseconds since the epoch inside, RFC 3339
//! at the edges.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};

/// Parse an RFC 3339 instant, or a bare date (midnight UTC).
pub fn parse_instant(s: &str) -> Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    Err(Error::Filter(format!("{s:?} is not an RFC 3339 time (2024-01-31T00:00:00Z) or a date (2024-01-31)")))
}

pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

pub fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis()
}
