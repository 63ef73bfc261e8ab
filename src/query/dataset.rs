//! Turning the command line's INPUTs into one lazy events frame: raw archives are read (see
//! `ingest::pipeline`), stores are scanned lazily with partition pruning, the shared filters are
//! applied and duplicate eventIDs dropped. Every question starts from a `Dataset`.
//!
//! Memory: inputs whose frame fits in half of `--memory-limit` are read into memory at once; larger
//! ones (and mixes of stores and files) go through `spill`, which holds one batch and one hour of
//! events at a time. A single store is scanned lazily. The questions run on Polars' streaming engine
//! (`query::collect`, `query::stream`), so what they hold is their groups, not their input.

use std::path::PathBuf;

use polars::prelude::*;

use std::sync::Arc;

use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::ingest::pipeline::{self, ReadOptions, ReadStats};
use crate::progress::Progress;
use crate::query::spill::{Collected, SpillWriter, Spilled, TimeOrderedRows};
use crate::source::filter::Filter;
use crate::source::{self, InputFile, Inputs};
use crate::store::dedup::PartitionSeen;
use crate::store::Store;

/// The events selected by the inputs and filters, with the accounting of how they were read.
pub struct Dataset {
    pub events: LazyFrame,
    pub stats: ReadStats,
    /// Events dropped as repeats of an eventID already seen.
    pub duplicates: u64,
    pub stores: Vec<PathBuf>,
    /// Rows come sorted by (event_time, event_id): a question that lists events in that order need
    /// not sort them (a sort holds all its rows in memory).
    pub sorted: bool,
    /// The temporary files an out-of-core dataset is scanned from; removed when the last user drops.
    pub spill: Option<Arc<Spilled>>,
    /// For a store scanned lazily: the rows of the parts the filter keeps (an upper bound of the
    /// events), to tell whether sorting them in memory fits the limit (see `time_ordered`).
    pub store_rows: Option<u64>,
}

/// What one event takes in memory as a full frame row, about (measured: ~2 KB per event).
pub(crate) const FRAME_BYTES_PER_EVENT: u64 = 2 << 10;

impl Dataset {
    /// The events `select` keeps (all of them when `None`), with only `columns` (all when `None`),
    /// streaming in time order for questions that list them so (`timeline`, `root`, `report`;
    /// `detect` and `hunt` fold instead and merge their findings in time order). A store is scanned
    /// in partition order, and sorting it takes all its rows in memory, so a store larger than half
    /// of `memory_limit` is read once with the selection applied: the rows selected are held while
    /// they take under an eighth of the limit (and sorted by the question, `sorted` false), and
    /// spilled by the hour past it (see `spill`; one batch and one hour at a time). Raw inputs are
    /// already either sorted (spilled) or small enough to sort.
    pub fn time_ordered(
        mut self,
        memory_limit: u64,
        select: Option<Expr>,
        columns: Option<&[&str]>,
    ) -> Result<Dataset> {
        let select_given = select.is_some();
        if let Some(e) = select {
            self.events = self.events.filter(e);
        }
        if let Some(names) = columns {
            self.events = self.events.select(names.iter().map(|n| col(*n)).collect::<Vec<_>>());
        }
        let Some(rows) = self.store_rows.filter(|_| !self.sorted) else { return Ok(self) };
        if rows.saturating_mul(FRAME_BYTES_PER_EVENT) <= memory_limit / 2 {
            return Ok(self);
        }
        let mut events = self.events;
        let schema = events.collect_schema().context("reading the store's schema")?;
        // Every event of a large store is more than the limit holds: spilled from the start.
        let budget = if select_given { memory_limit / 8 } else { 0 };
        let mut collector = TimeOrderedRows::new(budget, memory_limit);
        super::stream(events, |df| collector.add(df))?;
        let (events, sorted, spill) = match collector.finish()? {
            Collected::Held(rows) => {
                (rows.unwrap_or_else(|| DataFrame::empty_with_schema(&schema)).lazy(), false, None)
            }
            Collected::Spilled(spilled) => (spilled.scan()?, true, Some(Arc::new(spilled))),
        };
        crate::query::spill::memtrace("store read in time order");
        Ok(Dataset {
            events,
            stats: self.stats,
            duplicates: self.duplicates,
            stores: self.stores,
            sorted,
            spill,
            store_rows: None,
        })
    }
}

/// Load from the command line's inputs.
///
/// `s3` says how to reach s3:// stores among `paths`.
pub fn load(
    paths: &[PathBuf],
    filter: &Filter,
    opts: &ReadOptions,
    s3: &crate::store::s3::S3StoreOptions,
    quiet: bool,
) -> Result<Dataset> {
    load_keeping(paths, filter, opts, s3, quiet, None)
}

/// `load` for a question that will select the rows `keep` selects (and apply it itself): a large
/// input spills only those (`spilled`, which de-duplicates every row before it selects).
pub fn load_keeping(
    paths: &[PathBuf],
    filter: &Filter,
    opts: &ReadOptions,
    s3: &crate::store::s3::S3StoreOptions,
    quiet: bool,
    keep: Option<Expr>,
) -> Result<Dataset> {
    let inputs = discover(paths, filter, s3)?;
    from_inputs_keeping(inputs, filter, opts, quiet, keep)
}

/// Discover the command line's inputs without reading them: an s3:// store is read from its local
/// mirror, brought up to date first.
pub fn discover(paths: &[PathBuf], filter: &Filter, s3: &crate::store::s3::S3StoreOptions) -> Result<Inputs> {
    let mut local = Vec::with_capacity(paths.len());
    for p in paths {
        match p.to_str().filter(|s| crate::store::s3::is_s3(s)) {
            Some(url) => local.push(crate::store::s3::Mirror::sync(url, s3)?.dir),
            None => local.push(p.clone()),
        }
    }
    source::discover(&local, filter)
}

/// What reading the inputs batch by batch came to (see `fold`).
pub struct Folded {
    pub stats: ReadStats,
    /// Events dropped as repeats of one already seen.
    pub duplicates: u64,
    pub stores: Vec<PathBuf>,
}

/// For questions that fold their events in any order (partial aggregates merged as they come, as
/// `activity`'s per-principal rows): hand the selected, de-duplicated events to `each` a batch at a
/// time, in input order, and never spill them. Raw files are read in batches of an eighth of the
/// memory limit in decoded JSON, the next batch while `each` takes the last (with `--threads 1`, in
/// turn on one thread); each batch is de-duplicated against the partitions it touches
/// (`store::dedup`: exact, and memory holds the keys of the partitions being read), then filtered.
/// Memory: two batches and the keys of the partitions in flight, whatever the number of events. A single store streams its rows; stores mixed with files
/// go through `from_inputs` (and its spill).
pub fn fold(
    inputs: Inputs,
    filter: &Filter,
    opts: &ReadOptions,
    quiet: bool,
    mut each: impl FnMut(DataFrame) -> Result<()>,
) -> Result<Folded> {
    super::size_batches_for(opts.memory_limit);
    if !inputs.stores.is_empty() {
        let data = from_inputs(inputs, filter, opts, quiet)?;
        // The columns the question does not read are null from a store, as raw files leave them
        // (raw files fill the identity columns too, for de-duplication): never decoded
        // (`stream_reading`). The row filter's columns are read for the filter all the same.
        match opts.columns {
            Some(columns) => super::stream_reading(data.events, columns, each)?,
            None => super::stream(data.events, each)?,
        }
        return Ok(Folded { stats: data.stats, duplicates: data.duplicates, stores: data.stores });
    }
    let Inputs { files, stores, skipped, failed } = inputs;
    let (progress, mut stats) = start_reading(&files, skipped, failed, quiet);
    let select = row_filter(filter);
    // At least 256 KiB a batch (a few delivery files): a tiny limit cuts the input into many batches,
    // which is how the tests check that a fold does not depend on where the batches end.
    let budget = (opts.memory_limit / 8).max(256 << 10);
    let batches: Vec<&[InputFile]> =
        pipeline::batches(&files, budget, usize::MAX, pipeline::estimated_decoded_bytes).collect();
    let mut seen = PartitionSeen::spilling();
    let mut duplicates = 0u64;
    let mut fold_batch = |read: Result<(DataFrame, ReadStats)>| -> Result<()> {
        let (df, read) = read?;
        stats.merge(read);
        each(first_selected(df, &mut seen, select.as_ref(), &mut duplicates)?)
    };
    pipeline::read_ahead(batches, opts, &progress, |_, read| fold_batch(read))?;
    progress.finish();
    Ok(Folded { stats, duplicates, stores })
}

/// The progress bar over `files`, and the accounting so far: what discovery skipped or failed.
fn start_reading(
    files: &[InputFile],
    skipped: Vec<source::Skipped>,
    failed: Vec<source::Skipped>,
    quiet: bool,
) -> (Progress, ReadStats) {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new(files.len() as u64, total, quiet);
    let mut stats = ReadStats::default();
    for s in skipped {
        stats.add_skipped(s);
    }
    for f in failed {
        stats.add_failed(f);
    }
    (progress, stats)
}

pub fn from_inputs(inputs: Inputs, filter: &Filter, opts: &ReadOptions, quiet: bool) -> Result<Dataset> {
    from_inputs_keeping(inputs, filter, opts, quiet, None)
}

/// `from_inputs` with the rows the question will select (see `load_keeping`).
pub fn from_inputs_keeping(
    inputs: Inputs,
    filter: &Filter,
    opts: &ReadOptions,
    quiet: bool,
    keep: Option<Expr>,
) -> Result<Dataset> {
    super::size_batches_for(opts.memory_limit);
    let Inputs { files, stores, skipped, failed } = inputs;
    let (progress, mut stats) = start_reading(&files, skipped, failed, quiet);
    // A single store holds each eventID once already: answer from it lazily, with partition pruning
    // (the questions run on the streaming engine, so memory stays bounded).
    if stores.len() == 1 && files.is_empty() {
        let store = Store::open(&stores[0])?;
        let store_rows = Some(store.parts(filter).iter().map(|p| p.rows).sum());
        let lf = store.scan(filter)?;
        let events = match row_filter(filter) {
            Some(e) => lf.filter(e),
            None => lf,
        };
        progress.finish();
        return Ok(Dataset { events, stats, duplicates: 0, stores, sorted: false, spill: None, store_rows });
    }
    // Peak memory of an in-memory run per byte of JSON, measured at 1 M generated events (1.46 GB of
    // JSON): every column 1.6 (the blobs are most of a frame); with a projection about 0.25 plus 0.07
    // per string column filled (scan's 4: 0.35 GB over the process's base; activity's 16: 1.1 GB).
    let per_byte = match opts.columns {
        Some(cols) => 0.25 + 0.07 * cols.len() as f64,
        None => 2.0,
    };
    let fits = stores.is_empty() && estimated_frame_bytes(&files) as f64 * per_byte <= opts.memory_limit as f64;
    if !fits {
        return spilled(files, stores, stats, filter, opts, progress, keep);
    }
    let (raw, read) = pipeline::read_files(&files, opts, &progress)?;
    progress.finish();
    stats.merge(read);
    // De-duplicate over every row in input order first (so the first delivery of an event decides,
    // whether or not the filters select it), then filter; `duplicates` counts the selected repeats.
    let mut all = raw;
    let (first, _) = pipeline::first_occurrences(&all, &mut hashbrown::HashSet::new())?;
    all.with_column(first.with_name(FIRST.into()).into_column()).context("marking first occurrences")?;
    let mut lf = all.lazy();
    if let Some(e) = row_filter(filter) {
        lf = lf.filter(e);
    }
    let df = lf.collect().context("filtering events")?;
    let first = df.column(FIRST).context(FIRST)?.bool().context(FIRST)?.clone();
    let duplicates = first.len() as u64 - first.sum().unwrap_or(0) as u64;
    let df = df.filter(&first).context("dropping duplicate events")?.drop(FIRST).context(FIRST)?;
    Ok(Dataset { events: df.lazy(), stats, duplicates, stores, sorted: false, spill: None, store_rows: None })
}

/// What the rows of `files` take in memory as a frame, roughly: the decoded JSON.
fn estimated_frame_bytes(files: &[InputFile]) -> u64 {
    files.iter().map(pipeline::estimated_decoded_bytes).sum()
}

/// The out-of-core path (see `spill`): stores first, then the raw files in batches whose frames take
/// about an eighth of the memory limit each.
fn spilled(
    files: Vec<InputFile>,
    stores: Vec<PathBuf>,
    mut stats: ReadStats,
    filter: &Filter,
    opts: &ReadOptions,
    progress: Progress,
    keep: Option<Expr>,
) -> Result<Dataset> {
    // De-duplicated as the batches come, as `fold` does (every row counts, selected or not; then the
    // filter; `duplicates` counts the selected repeats), so that only the rows the question keeps
    // are spilled: the hours need no de-duplication of their own.
    let mut writer = if opts.any_order { SpillWriter::unordered()? } else { SpillWriter::distinct(opts.memory_limit)? };
    let mut seen = PartitionSeen::spilling();
    let select = row_filter(filter);
    let mut duplicates = 0u64;
    let mut add = |df: DataFrame| -> Result<()> {
        let mut df = first_selected(df, &mut seen, select.as_ref(), &mut duplicates)?;
        if let Some(e) = &keep {
            df = df.lazy().filter(e.clone()).collect().context("selecting events")?;
        }
        writer.add(df)
    };
    for root in &stores {
        // Stores are read whole here: pruning before de-duplication could change the answer.
        let lf = Store::open(root)?.scan(&Filter::default())?;
        super::stream(lf, &mut add)?;
    }
    // Floors keep a tiny limit from cutting the work into thousands of one-file batches.
    let budget = (opts.memory_limit / 8).max(4 << 20);
    for batch in pipeline::batches(&files, budget, usize::MAX, pipeline::estimated_decoded_bytes) {
        let (df, read) = pipeline::read_files(batch, opts, &progress)?;
        stats.merge(read);
        add(df)?;
    }
    crate::query::spill::memtrace("events spilled");
    progress.finish();
    let spilled = writer.finish()?;
    crate::query::spill::memtrace("buckets sorted");
    let events = spilled.scan()?;
    let sorted = !opts.any_order;
    Ok(Dataset { events, stats, duplicates, stores, sorted, spill: Some(Arc::new(spilled)), store_rows: None })
}

/// The rows of a batch that are the first of their event and that `select` selects, in order. Every
/// row counts for de-duplication (against the keys `seen` holds of its partition, and added to
/// them), selected or not; then the filter; `duplicates` counts the selected repeats.
fn first_selected(
    mut df: DataFrame,
    seen: &mut PartitionSeen,
    select: Option<&Expr>,
    duplicates: &mut u64,
) -> Result<DataFrame> {
    let (first, _) = seen.first_occurrences(&df, |_| Ok(Default::default()))?;
    seen.set_aside_idle()?;
    let first: BooleanChunked = first.into_iter().collect();
    df.with_column(first.with_name(FIRST.into()).into_column()).context("marking first occurrences")?;
    if let Some(e) = select {
        df = df.lazy().filter(e.clone()).collect().context("filtering events")?;
    }
    let first = df.column(FIRST).context(FIRST)?.bool().context(FIRST)?.clone();
    let repeats = first.len() as u64 - first.sum().unwrap_or(0) as u64;
    *duplicates += repeats;
    if repeats > 0 {
        df = df.filter(&first).context("dropping duplicate events")?;
    }
    df.drop(FIRST).context(FIRST)
}

/// Temporary column: is this row the first of its eventID?
const FIRST: &str = "__trailscope_first";

/// The filter on rows, `None` when nothing is filtered.
pub fn row_filter(filter: &Filter) -> Option<Expr> {
    let mut parts: Vec<Expr> = Vec::new();
    let time = col(c::EVENT_TIME).cast(DataType::Int64);
    if let Some(f) = filter.from_ms {
        parts.push(time.clone().gt_eq(lit(f)));
    }
    if let Some(t) = filter.to_ms {
        parts.push(time.lt(lit(t)));
    }
    if !filter.accounts.is_empty() {
        parts.push(any_of(crate::ingest::frame::account_expr(), &filter.accounts));
    }
    if !filter.regions.is_empty() {
        parts.push(any_of(col(c::AWS_REGION), &filter.regions));
    }
    parts.into_iter().reduce(|a, b| a.and(b))
}

fn any_of(e: Expr, values: &[String]) -> Expr {
    values.iter().map(|v| e.clone().eq(lit(v.as_str()))).reduce(|a, b| a.or(b)).expect("non-empty list")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery file of records (eventID, eventTime, identity type), one account and region.
    fn write_file(dir: &std::path::Path, name: &str, records: &[(&str, &str, &str)]) {
        let records: Vec<String> = records
            .iter()
            .map(|(id, time, kind)| {
                format!(
                    r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"Get-{kind}","awsRegion":"us-east-1","eventID":"{id}","recipientAccountId":"111122223333","userIdentity":{{"type":"{kind}","accountId":"111122223333"}}}}"#
                )
            })
            .collect();
        let path = dir.join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!(r#"{{"Records":[{}]}}"#, records.join(","))).unwrap();
    }

    /// Out of core, a question's selection (`keep`) is applied after de-duplication: a first copy
    /// it does not select still makes a later copy that it would select a duplicate, and the rows
    /// are those of the in-memory path, selected.
    #[test]
    fn spilling_only_the_selected_rows_keeps_the_first_copy_of_each_event() {
        let dir = tempfile::tempdir().unwrap();
        let t = |h: u32| format!("2024-05-01T{h:02}:00:00Z");
        write_file(dir.path(), "a.json", &[("e1", &t(1), "IAMUser"), ("e2", &t(2), "Root"), ("e3", &t(3), "IAMUser")]);
        write_file(dir.path(), "b.json", &[("e1", &t(1), "Root"), ("e2", &t(2), "IAMUser"), ("e4", &t(4), "Root")]);
        let inputs = || source::discover(&[dir.path().to_path_buf()], &Filter::default()).unwrap();
        let keep = col(c::IDENTITY_TYPE).eq(lit("Root"));
        let held = from_inputs(inputs(), &Filter::default(), &ReadOptions::default(), true).unwrap();
        assert!(held.spill.is_none() && held.duplicates == 2);
        let expected = held.events.filter(keep.clone()).sort([c::EVENT_TIME], Default::default()).collect().unwrap();
        let tiny = ReadOptions { memory_limit: 1, ..ReadOptions::default() };
        let spilled = from_inputs_keeping(inputs(), &Filter::default(), &tiny, true, Some(keep)).unwrap();
        assert!(spilled.spill.is_some() && spilled.sorted);
        assert_eq!(spilled.duplicates, 2, "every repeat is counted, selected or not");
        let got = spilled.events.collect().unwrap();
        let ids: Vec<Option<&str>> = got.column(c::EVENT_ID).unwrap().str().unwrap().iter().collect();
        assert_eq!(ids, [Some("e2"), Some("e4")], "e1's first copy is not Root");
        assert_eq!(got, expected);
    }
}
