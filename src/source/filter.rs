//! The filters every command shares: `--from`/`--to` (half-open `[from, to)` on event_time),
//! `--account` and `--region`. They prune whole files by S3 key (`source.rs`), whole store partitions
//! (`store.rs`), and finally rows (`query::dataset::row_filter`).

use chrono::{Duration, NaiveDate};

use crate::error::{Error, Result};
use crate::layout::KeyInfo;
use crate::time::{day_start_ms, format_ms, parse_instant};

/// How late CloudTrail may deliver an event after it happened, for pruning by the delivery date in the
/// S3 key. AWS documents ~5-15 minutes on average; a day of margin means we read at most one extra
/// day of files at each end of a window and never lose an event inside it.
pub const DEFAULT_LATE_DELIVERY: Duration = Duration::hours(24);

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub late_delivery: Option<Duration>,
}

impl Filter {
    pub fn new(from: Option<&str>, to: Option<&str>, accounts: Vec<String>, regions: Vec<String>) -> Result<Self> {
        let from_ms = from.map(parse_instant).transpose()?;
        let to_ms = to.map(parse_instant).transpose()?;
        if let (Some(f), Some(t)) = (from_ms, to_ms) {
            if f >= t {
                return Err(Error::Filter(format!("--from {} is not before --to {}", format_ms(f), format_ms(t))));
            }
        }
        Ok(Filter { from_ms, to_ms, accounts, regions, late_delivery: None })
    }

    pub fn is_empty(&self) -> bool {
        self.from_ms.is_none() && self.to_ms.is_none() && self.accounts.is_empty() && self.regions.is_empty()
    }

    fn late(&self) -> i64 {
        self.late_delivery.unwrap_or(DEFAULT_LATE_DELIVERY).num_milliseconds()
    }

    /// Can a whole file be skipped on its S3 key? `Some(reason)` if so.
    pub fn prunes_key(&self, key: &KeyInfo) -> Option<String> {
        if let Some(a) = &key.account {
            if !self.accounts.is_empty() && !self.accounts.contains(a) {
                return Some(format!("account {a} not selected (from the S3 key)"));
            }
        }
        if let Some(r) = &key.region {
            if !self.regions.is_empty() && !self.regions.contains(r) {
                return Some(format!("region {r} not selected (from the S3 key)"));
            }
        }
        let date = key.date?;
        let start = day_start_ms(date);
        let end = start + 86_400_000;
        // Events are delivered after they happen: none in a file is later than the end of its folder's
        // day (plus an hour of clock skew), and none is earlier than the day's start minus the margin.
        if let Some(from) = self.from_ms {
            if end + 3_600_000 <= from {
                return Some(format!("delivered {date}, before --from (from the S3 key)"));
            }
        }
        if let Some(to) = self.to_ms {
            if start - self.late() >= to {
                return Some(format!("delivered {date}, after --to plus the late-delivery margin (from the S3 key)"));
            }
        }
        None
    }

    /// Can a store partition (account, region, event date) be skipped?
    pub fn prunes_partition(&self, account: &str, region: &str, date: Option<NaiveDate>) -> bool {
        if !self.accounts.is_empty() && !self.accounts.iter().any(|a| a == account) {
            return true;
        }
        if !self.regions.is_empty() && !self.regions.iter().any(|r| r == region) {
            return true;
        }
        if let Some(d) = date {
            let start = day_start_ms(d);
            if self.from_ms.is_some_and(|f| start + 86_400_000 <= f) || self.to_ms.is_some_and(|t| start >= t) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(date: &str) -> KeyInfo {
        KeyInfo {
            account: Some("111111111111".into()),
            region: Some("us-east-1".into()),
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d").ok(),
        }
    }

    #[test]
    fn key_pruning_keeps_a_margin() {
        let f = Filter::new(Some("2024-03-10T00:00:00Z"), Some("2024-03-11T00:00:00Z"), vec![], vec![]).unwrap();
        assert!(f.prunes_key(&key("2024-03-08")).is_some());
        // The day before `from` may hold nothing in the window, but the window's own day and the day
        // after `to` (late deliveries) must be read.
        assert!(f.prunes_key(&key("2024-03-10")).is_none());
        assert!(f.prunes_key(&key("2024-03-11")).is_none());
        assert!(f.prunes_key(&key("2024-03-12")).is_some());
        let acct = Filter::new(None, None, vec!["222222222222".into()], vec![]).unwrap();
        assert!(acct.prunes_key(&key("2024-03-10")).is_some());
        assert!(acct.prunes_key(&KeyInfo::default()).is_none());
    }

    #[test]
    fn rejects_bad_windows() {
        assert!(Filter::new(Some("2024-03-10"), Some("2024-03-10"), vec![], vec![]).is_err());
        assert!(Filter::new(Some("last tuesday"), None, vec![], vec![]).is_err());
        assert_eq!(parse_instant("2024-03-10").unwrap(), parse_instant("2024-03-10T00:00:00Z").unwrap());
    }
}
