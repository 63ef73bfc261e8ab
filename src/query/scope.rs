//! What a set of events covers: how many, first and last time, and counts by account, region and
//! day — the numbers `scan` prints and the report's Scope section shows.

use crate::query::Run;
use polars::prelude::*;
use serde::Serialize;

use crate::error::{PolarsContext, Result};
use crate::ingest::frame::{account_expr, col_name as c};

/// Events under one key (`__HIVE_DEFAULT_PARTITION__` for a missing value).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Count {
    pub key: String,
    pub events: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub events: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub by_account: Vec<Count>,
    pub by_region: Vec<Count>,
    pub by_day: Vec<Count>,
}

/// Counts per `key`, sorted by key (nulls last).
pub fn count_by(events: &LazyFrame, key: Expr) -> Result<Vec<Count>> {
    let df = events
        .clone()
        .group_by([key.cast(DataType::String).alias("key")])
        .agg([len().cast(DataType::UInt64).alias("events")])
        .sort(["key"], SortMultipleOptions::default().with_nulls_last(true))
        .run()
        .context("counting events")?;
    let keys = df.column("key").context("key")?.str().context("key")?.clone();
    let n = df.column("events").context("events")?.u64().context("events")?.clone();
    Ok(keys
        .iter()
        .zip(n.iter())
        .map(|(k, n)| Count { key: k.unwrap_or(crate::store::NULL_PARTITION).to_string(), events: n.unwrap_or(0) })
        .collect())
}

/// The scope of `events`.
pub fn scope(events: &LazyFrame) -> Result<Scope> {
    let totals = events
        .clone()
        .select([
            len().cast(DataType::Int64).alias("n"),
            col(c::EVENT_TIME).min().cast(DataType::Int64).alias("first"),
            col(c::EVENT_TIME).max().cast(DataType::Int64).alias("last"),
        ])
        .run()
        .context("summarizing events")?;
    let get =
        |name: &str| -> Result<Option<i64>> { Ok(totals.column(name).context(name)?.i64().context(name)?.get(0)) };
    Ok(Scope {
        events: get("n")?.unwrap_or(0) as u64,
        first_ms: get("first")?,
        last_ms: get("last")?,
        by_account: count_by(events, account_expr())?,
        by_region: count_by(events, col(c::AWS_REGION))?,
        by_day: count_by(events, col(c::EVENT_TIME).dt().strftime("%Y-%m-%d"))?,
    })
}

/// `scope` fed a batch of events at a time (see `dataset::fold`): the same numbers whatever the
/// batches. Days are kept as day numbers and written once at the end.
#[derive(Default)]
pub struct ScopeFold {
    events: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    by_account: Counts,
    by_region: Counts,
    by_day: hashbrown::HashMap<i64, u64>,
}

const DAY_MS: i64 = 86_400_000;

/// Events per key, and without one.
#[derive(Default)]
struct Counts {
    keys: hashbrown::HashMap<String, u64>,
    missing: u64,
}

impl Counts {
    fn add(&mut self, key: Option<&str>) {
        match key {
            Some(k) => match self.keys.get_mut(k) {
                Some(n) => *n += 1,
                None => {
                    self.keys.insert(k.to_string(), 1);
                }
            },
            None => self.missing += 1,
        }
    }

    /// Sorted by key, the missing key last, as `count_by` sorts.
    fn finish(self) -> Vec<Count> {
        let mut keys: Vec<(String, u64)> = self.keys.into_iter().collect();
        keys.sort();
        let missing = (self.missing > 0).then(|| (crate::store::NULL_PARTITION.to_string(), self.missing));
        keys.into_iter().chain(missing).map(|(key, events)| Count { key, events }).collect()
    }
}

impl ScopeFold {
    pub fn add(&mut self, events: &DataFrame) -> Result<()> {
        let text = |name: &str| -> Result<StringChunked> {
            Ok(events.column(name).context(name)?.str().context(name)?.clone())
        };
        let (recipient, caller, region) = (text(c::RECIPIENT_ACCOUNT_ID)?, text(c::ACCOUNT_ID)?, text(c::AWS_REGION)?);
        let times = events.column(c::EVENT_TIME).context("event_time")?.cast(&DataType::Int64).context("event_time")?;
        let times = times.i64().context("event_time")?;
        self.events += events.height() as u64;
        let cells = super::cells(&recipient).zip(super::cells(&caller)).zip(super::cells(&region));
        for (((recipient, caller), region), t) in cells.zip(super::cells(times)) {
            // As `account_expr`: the recipient account, else the caller's.
            self.by_account.add(recipient.or(caller));
            self.by_region.add(region);
            if let Some(t) = t {
                self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
                self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
                *self.by_day.entry(t.div_euclid(DAY_MS)).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Scope {
        let mut by_day = Counts::default();
        for (d, n) in self.by_day {
            match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(d * DAY_MS) {
                Some(t) => *by_day.keys.entry(t.format("%Y-%m-%d").to_string()).or_insert(0) += n,
                None => by_day.missing += n,
            }
        }
        Scope {
            events: self.events,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            by_account: self.by_account.finish(),
            by_region: self.by_region.finish(),
            by_day: by_day.finish(),
        }
    }
}
