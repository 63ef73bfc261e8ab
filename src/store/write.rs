//! `scan --store`: ingest raw archives into a store in batches, so memory stays flat however many
//! files there are, skipping files the store already holds unchanged (same path, size and mtime),
//! and never writing an event (eventID and time) the store already has.

use std::path::Path;

use serde::Serialize;

use polars::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::ingest::pipeline::{self, EventKey, ReadOptions, ReadStats};
use crate::progress::Progress;
use crate::source::{InputFile, Inputs};
use crate::store::{partition_rows, InputRecord, PartitionKey, Store};

/// A batch is cut after this many files at most (and by bytes, see `ingest`).
const BATCH_FILES: usize = 20_000;

#[derive(Debug, Default, Serialize)]
pub struct IngestStats {
    pub files_ingested: u64,
    pub files_unchanged: u64,
    pub events_written: u64,
    pub duplicates: u64,
    pub batches: u64,
}

/// Ingest `inputs` into the store at `root` (created if absent). Filters are not applied to what is
/// written: the store keeps whole files, so a later run with another window finds them complete.
pub fn ingest(root: &Path, inputs: Inputs, opts: &ReadOptions, quiet: bool) -> Result<(IngestStats, ReadStats)> {
    if let Some(s) = inputs.stores.first() {
        return Err(Error::Usage(format!(
            "{} is a store; a store cannot be ingested into another store",
            crate::fs::display_path(s)
        )));
    }
    let mut store = Store::create_or_open(root)?;
    let mut stats = IngestStats::default();
    let mut read = ReadStats::default();
    for s in inputs.skipped {
        read.add_skipped(s);
    }
    for f in inputs.failed {
        read.add_failed(f);
    }
    // Rows carry the absolute path as source_file, the same key the manifests use, so that the rows of
    // a re-ingested file can be told apart from its earlier ingest.
    let opts = &ReadOptions { absolute_source_file: true, ..opts.clone() };
    let known = store.known_inputs();
    let (unchanged, todo): (Vec<InputFile>, Vec<InputFile>) =
        inputs.files.into_iter().partition(|f| store.is_unchanged(&known, f));
    let changed: hashbrown::HashSet<String> =
        todo.iter().map(|f| crate::layout::input_key(&f.path)).filter(|k| known.contains_key(k.as_str())).collect();
    drop(known);
    stats.files_unchanged = unchanged.len() as u64;
    let mut seen = Seen::default();
    let total: u64 = todo.iter().map(|f| f.size).sum();
    let progress = Progress::new(todo.len() as u64, total, quiet);
    let run = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), std::process::id());
    // Claim the store as a writer, removing what crashed writers left (see `Store::recover`).
    store.start_writing(&run)?;
    // A batch's decoded JSON is an eighth of the memory limit, as the out-of-core path reads (its
    // frame and the Parquet encoding take a few times that).
    let budget = (opts.memory_limit / 8).max(4 << 20);
    for (n, batch) in pipeline::batches(&todo, budget, BATCH_FILES, pipeline::estimated_decoded_bytes).enumerate() {
        let (df, batch_read) = pipeline::read_files(batch, opts, &progress)?;
        let (df, dupes) = seen.dedupe(&store, df, &changed)?;
        stats.duplicates += dupes;
        stats.events_written += df.height() as u64;
        // Record the files read; skipped and failed ones are looked at again next time (skipping is
        // cheap, and a failed file may have been repaired).
        let records: Vec<InputRecord> = {
            let not_read: hashbrown::HashSet<&str> =
                batch_read.failed.iter().chain(&batch_read.skipped).map(|f| f.path.as_str()).collect();
            batch
                .iter()
                .filter(|f| !not_read.contains(crate::fs::display_path(&f.path).as_str()))
                .map(|f| InputRecord { path: crate::layout::input_key(&f.path), size: f.size, mtime_ns: f.mtime_ns })
                .collect()
        };
        stats.files_ingested += batch_read.files;
        read.merge(batch_read);
        store.write_batch(&format!("{run}-{n:05}"), &df, records)?;
        seen.forget_idle();
        stats.batches += 1;
    }
    progress.finish();
    Ok((stats, read))
}

/// The event keys of the partitions recent batches touched, loaded from the store when first needed
/// and forgotten when a batch goes by without touching them: memory holds the keys of the
/// partitions being written, not of the whole store. A forgotten partition that comes back is read
/// again from the store, which by then holds every row written before, so de-duplication stays exact.
#[derive(Default)]
struct Seen {
    partitions: hashbrown::HashMap<PartitionKey, (hashbrown::HashSet<EventKey>, bool)>,
}

impl Seen {
    /// Keep the first row of each event not already in its partition; returns the frame and the
    /// number of duplicates dropped.
    fn dedupe(
        &mut self,
        store: &Store,
        df: DataFrame,
        reingesting: &hashbrown::HashSet<String>,
    ) -> Result<(DataFrame, u64)> {
        let ids = df.column(c::EVENT_ID).context("event_id")?.str().context("event_id")?.clone();
        let times = df.column(c::EVENT_TIME).context("event_time")?.cast(&DataType::Int64).context("event_time")?;
        let times = times.i64().context("event_time")?.clone();
        let mut keep = vec![true; df.height()];
        let mut dupes = 0u64;
        for (key, rows) in partition_rows(&df)? {
            let (set, used) = match self.partitions.entry(key) {
                hashbrown::hash_map::Entry::Occupied(e) => e.into_mut(),
                hashbrown::hash_map::Entry::Vacant(e) => {
                    let keys = store.partition_event_keys(e.key(), reingesting)?;
                    e.insert((keys, false))
                }
            };
            *used = true;
            for row in rows {
                let row = row as usize;
                let Some(id) = ids.get(row) else { continue };
                let key = (id.to_string(), times.get(row).unwrap_or(i64::MIN));
                if !set.insert(key) {
                    keep[row] = false;
                    dupes += 1;
                }
            }
        }
        if dupes == 0 {
            return Ok((df, 0));
        }
        let mask: BooleanChunked = keep.into_iter().collect();
        Ok((df.filter(&mask).context("dropping duplicate events")?, dupes))
    }

    /// Forget the partitions the last batch did not touch; mark the rest untouched for the next.
    fn forget_idle(&mut self) {
        self.partitions.retain(|_, (_, used)| std::mem::take(used));
    }
}
