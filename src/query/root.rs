//! `root`: root-account usage under CIS AWS Foundations semantics (CIS 1.4 §4.3 / Security Hub
//! CloudWatch.1): `userIdentity.type == "Root"`, no `userIdentity.invokedBy`, and
//! `eventType != "AwsServiceEvent"`. Rows in time order (then event_id); a summary of sign-ins, MFA,
//! access-key use and source IPs.

use polars::prelude::*;

use super::{is_console_failure, is_console_login, mfa_used, present};
use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;

/// The CIS root-usage condition.
pub fn is_root_usage() -> Expr {
    col(c::IDENTITY_TYPE)
        .eq(lit("Root"))
        .fill_null(lit(false))
        .and(col(c::INVOKED_BY).is_null())
        .and(col(c::EVENT_TYPE).neq_missing(lit("AwsServiceEvent")))
}

pub const COLUMNS: [&str; 13] = [
    c::EVENT_TIME,
    c::EVENT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::EVENT_NAME,
    c::EVENT_SOURCE,
    c::AWS_REGION,
    c::SOURCE_IP,
    c::USER_AGENT,
    c::ERROR_CODE,
    c::ACCESS_KEY_ID,
    c::CONSOLE_LOGIN,
    c::MFA_USED,
    c::SESSION_MFA,
];

/// Root events in time order (`sorted`: the events come in that order already).
pub fn events(ev: LazyFrame, sorted: bool) -> LazyFrame {
    super::in_time_order(ev.filter(is_root_usage()).select(COLUMNS.iter().map(|n| col(*n)).collect::<Vec<_>>()), sorted)
}

/// The string columns the summary reads (raw files fill only these; see `ReadOptions::columns`):
/// what it needs plus what the shared filters and de-duplication read.
pub const SUMMARY_COLUMNS_READ: &[&str] = &[
    c::IDENTITY_TYPE,
    c::INVOKED_BY,
    c::EVENT_TYPE,
    c::EVENT_NAME,
    c::CONSOLE_LOGIN,
    c::ERROR_MESSAGE,
    c::MFA_USED,
    c::ACCESS_KEY_ID,
    c::SOURCE_IP,
    c::EVENT_ID,
    c::ACCOUNT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::AWS_REGION,
];

/// The columns the root events and the summary read, for `Dataset::time_ordered`.
pub fn columns_listed() -> Vec<&'static str> {
    let mut names = COLUMNS.to_vec();
    names.extend(SUMMARY_COLUMNS_READ.iter().filter(|n| !COLUMNS.contains(n)));
    names
}

/// The summary's counts, in its column order (see `counts`).
const COUNTS: [&str; 8] = [
    "events",
    "console_logins",
    "console_login_success",
    "console_login_failure",
    "console_login_success_without_mfa",
    "access_key_events",
    "akia_key_events",
    "asia_key_events",
];

/// The summary's counts, named as `COUNTS`: each adds up across batches.
fn counts() -> [Expr; 8] {
    let login = is_console_login();
    let success = login.clone().and(col(c::CONSOLE_LOGIN).eq(lit("Success")).fill_null(lit(false)));
    let key = col(c::ACCESS_KEY_ID);
    let count = |e: Expr, name: &str| e.cast(DataType::UInt32).sum().alias(name);
    [
        len().alias(COUNTS[0]),
        count(login, COUNTS[1]),
        count(success.clone(), COUNTS[2]),
        count(is_console_failure(), COUNTS[3]),
        count(success.and(mfa_used().not()), COUNTS[4]),
        count(present(c::ACCESS_KEY_ID), COUNTS[5]),
        count(key.clone().str().starts_with(lit("AKIA")).fill_null(lit(false)), COUNTS[6]),
        count(key.str().starts_with(lit("ASIA")).fill_null(lit(false)), COUNTS[7]),
    ]
}

/// One row of counts: the summary the table view closes with (and `--summary` prints).
pub fn summary(ev: LazyFrame) -> LazyFrame {
    let mut columns = counts().to_vec();
    columns.extend([
        col(c::SOURCE_IP).drop_nulls().n_unique().alias("source_ips"),
        col(c::EVENT_TIME).min().alias("first_use"),
        col(c::EVENT_TIME).max().alias("last_use"),
    ]);
    ev.filter(is_root_usage()).select(columns)
}

/// `summary` folded batch by batch as the events are read (`dataset::fold`): the counts add up, the
/// distinct source IPs are kept as a set (copied out of the batch), first and last use take the
/// smallest and largest. Memory: the root events' distinct source IPs, never the events.
#[derive(Default)]
pub struct SummaryFold {
    counts: [u64; 8],
    source_ips: hashbrown::HashSet<String>,
    first: Option<i64>,
    last: Option<i64>,
}

impl SummaryFold {
    pub fn add(&mut self, batch: DataFrame) -> Result<()> {
        let mut columns = counts().to_vec();
        columns.extend([
            col(c::SOURCE_IP).drop_nulls().unique().implode(false).alias("source_ips"),
            col(c::EVENT_TIME).cast(DataType::Int64).min().alias("first_use"),
            col(c::EVENT_TIME).cast(DataType::Int64).max().alias("last_use"),
        ]);
        let part = batch.lazy().filter(is_root_usage()).select(columns).collect().context("root summary")?;
        let number = |name: &str| -> Result<Option<u64>> {
            let v = part.column(name).context(name)?.cast(&DataType::UInt64).context(name)?;
            Ok(v.u64().context(name)?.get(0))
        };
        for (total, name) in self.counts.iter_mut().zip(COUNTS) {
            *total += number(name)?.unwrap_or(0);
        }
        let time =
            |name: &str| -> Result<Option<i64>> { Ok(part.column(name).context(name)?.i64().context(name)?.get(0)) };
        let (first, last) = (time("first_use")?, time("last_use")?);
        self.first = self.first.into_iter().chain(first).min();
        self.last = self.last.into_iter().chain(last).max();
        let ips = part.column("source_ips").context("source_ips")?.list().context("source_ips")?.get_as_series(0);
        if let Some(ips) = ips {
            for ip in ips.str().context("source_ips")?.iter().flatten() {
                if !self.source_ips.contains(ip) {
                    self.source_ips.insert(ip.to_string());
                }
            }
        }
        Ok(())
    }

    /// The one-row summary, with the same columns and types as `summary`.
    pub fn finish(self) -> Result<DataFrame> {
        let schema = summary(crate::ingest::frame::empty()?.lazy()).collect_schema().context("root summary")?;
        let mut values: Vec<Column> =
            COUNTS.iter().zip(self.counts).map(|(name, n)| Column::new((*name).into(), [n])).collect();
        values.push(Column::new("source_ips".into(), [self.source_ips.len() as u64]));
        values.push(Column::new("first_use".into(), [self.first]));
        values.push(Column::new("last_use".into(), [self.last]));
        let columns = values
            .into_iter()
            .map(|v| {
                let dtype = schema.get(v.name()).cloned().unwrap_or(DataType::Null);
                v.cast(&dtype).context("root summary")
            })
            .collect::<Result<Vec<_>>>()?;
        DataFrame::new(1, columns).context("root summary")
    }
}
