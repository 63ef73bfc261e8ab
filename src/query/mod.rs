//! The questions. Each module builds a lazy Polars plan over the events frame and returns it (or a
//! few named sections); none of them prints. `output` writes the result in the chosen format.

pub mod activity;
pub mod dataset;
pub mod detect;
pub mod failures;
pub mod findings;
pub mod hunt;
pub mod intern;
pub mod record;
pub mod root;
pub mod scope;
pub mod sessions;
pub mod sort;
pub mod spill;
pub mod sql;
pub mod sql_pack;
pub mod timeline;
pub mod unused;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;

/// Running a plan on Polars' streaming engine, which holds groups and joins' build sides, not its
/// input (a full sort still collects what it sorts; see `Dataset::sorted`). Every question's plan is
/// run this way.
pub trait Run {
    fn run(self) -> PolarsResult<DataFrame>;
}

impl Run for LazyFrame {
    fn run(self) -> PolarsResult<DataFrame> {
        Ok(shared_nothing(self).collect_with_engine(Engine::Streaming)?.unwrap_single())
    }
}

/// No sub-plan shared between branches: the streaming engine feeds a shared input to its consumers
/// through a buffer that grows while one of them waits (measured: several `n_unique` in one
/// `group_by` grew from 0.61 GB at 1 M events to 0.92 GB at 4 M). Common-subplan elimination would
/// create such sharing (its `cse` feature is not enabled; this keeps it off if one pulls it in), and
/// the plans use no `cache()` for the same reason.
fn shared_nothing(lf: LazyFrame) -> LazyFrame {
    let mut flags = lf.get_current_optimizations();
    flags.remove(OptFlags::COMM_SUBPLAN_ELIM);
    lf.with_optimizations(flags)
}

/// Rows per batch handed to `stream`'s caller (see `size_batches_for`).
static STREAM_ROWS: AtomicUsize = AtomicUsize::new(4096);

/// Size `stream`'s batches for `memory_limit`: a sixteenth of it in full frame rows (about 2 KB
/// each), between 1,024 and 32,768 rows (32,768 at the default 1 GiB). Every batch costs a plan of
/// the question's per-batch work (`detect` plans its checks; `activity` planned a projection until
/// the eighth session): from a 10 M-event store, batches of 32,768 rows instead of 4,096 took
/// `detect` from 15.2 to 11.9 s and `activity` from 5.2 to 3.9 s, for 70-90 MB more at the peak;
/// 65,536 rows were slower again. `dataset` calls it with the inputs' `--memory-limit`.
pub fn size_batches_for(memory_limit: u64) {
    let rows = (memory_limit / 16 / dataset::FRAME_BYTES_PER_EVENT).clamp(1 << 10, 1 << 15);
    STREAM_ROWS.store(rows as usize, AtomicOrdering::Relaxed);
}

/// Run a plan on the streaming engine and hand its rows to `each`, a batch at a time and in order,
/// so that a long answer is written as it is produced, never held whole. An error from `each` stops
/// the query and is returned as it is (a broken pipe stays a broken pipe).
pub fn stream(lf: LazyFrame, mut each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(2);
    // The callback returns "stop" once the receiving side has gone away.
    let lf = shared_nothing(lf)
        .sink_batches(
            PlanCallback::new(move |df: DataFrame| Ok(tx.send(df).is_err())),
            true,
            NonZeroUsize::new(STREAM_ROWS.load(AtomicOrdering::Relaxed)),
        )
        .context("planning the query")?;
    let query = std::thread::spawn(move || lf.collect_with_engine(Engine::Streaming).map(|_| ()));
    let mut result = Ok(());
    for df in rx.iter() {
        if let Err(e) = each(df) {
            result = Err(e);
            break;
        }
    }
    drop(rx);
    let ran = query.join().unwrap_or_else(|_| Err(PolarsError::ComputeError("the query thread panicked".into())));
    result?;
    ran.context("answering")
}

/// `stream` for a question that reads only the string columns `columns` (and every other kind):
/// the others are never decoded, and come to `each` null, in the frame's column order, as raw files
/// read with those columns leave them (added to each batch as it is handed on: filled in the
/// stream, they were materialized in every morsel in flight, +120 MB at the peak).
pub fn stream_reading(
    mut lf: LazyFrame,
    columns: &[&str],
    mut each: impl FnMut(DataFrame) -> Result<()>,
) -> Result<()> {
    let schema = lf.collect_schema().context("reading the events' columns")?;
    let null: Vec<&str> = crate::ingest::frame::unread(columns).filter(|n| schema.contains(n)).collect();
    let read: Vec<Expr> = schema.iter_names().filter(|n| !null.contains(&n.as_str())).map(|n| col(n.clone())).collect();
    let order: Vec<PlSmallStr> = schema.iter_names().cloned().collect();
    stream(lf.select(read), |mut df| {
        for name in &null {
            df.with_column(Column::full_null((*name).into(), df.height(), &DataType::String))
                .context("a column left null")?;
        }
        each(df.select(order.iter().cloned()).context("a column left null")?)
    })
}

/// A question's answer: one or more named tables, each in a documented, deterministic order.
pub struct Answer {
    pub sections: Vec<(String, LazyFrame)>,
    /// Temporary files some section is scanned from, kept until the answer is written.
    pub spills: Vec<std::sync::Arc<spill::Spilled>>,
}

impl Answer {
    pub fn one(name: &str, lf: LazyFrame) -> Self {
        Answer { sections: vec![(name.to_string(), lf)], spills: Vec::new() }
    }

    pub fn with(mut self, name: &str, lf: LazyFrame) -> Self {
        self.sections.push((name.to_string(), lf));
        self
    }
}

/// A column's cells, chunk by chunk: `ChunkedArray::iter` goes through a boxed iterator (a call per
/// cell, 3% of `activity`'s instructions from a store), and `get` finds the chunk anew each time.
pub fn cells<T: PolarsDataType>(ca: &ChunkedArray<T>) -> impl Iterator<Item = Option<T::Physical<'_>>> + '_ {
    ca.downcast_iter().flat_map(|array| polars::prelude::StaticArray::iter(array))
}

/// A non-empty string column value.
pub fn present(name: &str) -> Expr {
    col(name).is_not_null().and(col(name).neq(lit("")))
}

/// The request failed: any non-empty errorCode.
pub fn is_error() -> Expr {
    present(c::ERROR_CODE)
}

/// Authorization failures: `AccessDenied*`, `*UnauthorizedOperation`, `VpceAccessDenied`, with or
/// without EC2's `Client.`/`Server.` prefix (`iam::errors::classify`, as `findings::outcome` says
/// `denied`).
pub fn is_denied() -> Expr {
    present(c::ERROR_CODE).and(crate::iam::errors::denied(col(c::ERROR_CODE)))
}

/// A console sign-in event.
pub fn is_console_login() -> Expr {
    col(c::EVENT_NAME).eq(lit("ConsoleLogin"))
}

/// Did the sign-in use MFA? `additionalEventData.MFAUsed`, compared case-insensitively with "yes".
pub fn mfa_used() -> Expr {
    col(c::MFA_USED).str().to_lowercase().eq(lit("yes")).fill_null(lit(false))
}

/// A failed console sign-in: `ConsoleLogin` with `errorMessage` "Failed authentication", or the
/// `responseElements.ConsoleLogin` "Failure" that the same events carry.
pub fn is_console_failure() -> Expr {
    is_console_login().and(
        col(c::ERROR_MESSAGE)
            .eq(lit("Failed authentication"))
            .fill_null(lit(false))
            .or(col(c::CONSOLE_LOGIN).eq(lit("Failure")).fill_null(lit(false))),
    )
}

/// The regular expression that strips the domain from an eventSource (shared with the SQL pack;
/// written without backslashes so that every SQL dialect's string literal keeps it as is).
pub const SERVICE_SUFFIX_RE: &str = "[.]amazonaws[.]com$";

/// The service of an event: `eventSource` without `.amazonaws.com` (what `SERVICE_SUFFIX_RE`
/// removes; a suffix strip is 9% of `activity`'s CPU cheaper than the regular expression).
pub fn service() -> Expr {
    col(c::EVENT_SOURCE).str().strip_suffix(lit(".amazonaws.com"))
}

/// Translate a shell glob (`*`, `?`) to an anchored regular expression.
pub fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^");
    for ch in glob.chars() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c if "\\.+()|[]{}^$#&-~".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push('$');
    re
}

/// Does `column` match `pattern` (exactly, or as a glob when it has `*` or `?`)?
pub fn matches(column: &str, pattern: &str) -> Expr {
    let e = if pattern.contains(['*', '?']) {
        col(column).str().contains(lit(glob_regex(pattern)), true)
    } else {
        col(column).eq(lit(pattern))
    };
    e.fill_null(lit(false))
}

/// The columns a principal pattern (`principal_filter`) is matched against.
pub const PRINCIPAL_FIELDS: [&str; 6] =
    [c::PRINCIPAL, c::ARN, c::USER_NAME, c::ACCESS_KEY_ID, c::SESSION_ISSUER_USER_NAME, c::PRINCIPAL_ID];

/// Rows of any of the principals named: an ARN, a user name, an access key id, or a glob of one.
pub fn principal_filter(patterns: &[String]) -> Option<Expr> {
    patterns.iter().flat_map(|p| PRINCIPAL_FIELDS.iter().map(move |f| matches(f, p))).reduce(|a, b| a.or(b))
}

/// Rows in time order, then by event_id. `sorted` says the events already come in that order (an
/// out-of-core dataset, see `Dataset::sorted`): then nothing is sorted, and the rows stream.
pub fn in_time_order(lf: LazyFrame, sorted: bool) -> LazyFrame {
    if sorted {
        lf
    } else {
        lf.sort([c::EVENT_TIME, c::EVENT_ID], ascending(2))
    }
}

/// Sort options: each key descending where `desc` says so, nulls last, stable.
pub fn order(desc: impl Into<Vec<bool>>) -> SortMultipleOptions {
    SortMultipleOptions::default()
        .with_order_descending_multi(desc.into())
        .with_nulls_last(true)
        .with_maintain_order(true)
}

/// Sort options: every key ascending, nulls last, stable.
pub fn ascending(n: usize) -> SortMultipleOptions {
    order(vec![false; n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_anchored_regexes() {
        assert_eq!(glob_regex("arn:aws:iam::*:user/a?c"), r"^arn:aws:iam::.*:user/a.c$");
        assert_eq!(glob_regex("x.y"), r"^x\.y$");
    }
}
