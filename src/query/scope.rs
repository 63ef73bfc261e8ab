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
