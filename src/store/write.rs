//! `scan --store`: ingest raw archives into a store in batches, so memory stays flat however many
//! files there are, skipping files the store already holds unchanged (same path, size and mtime),
//! and never writing an event (eventID and time) the store already has.

use std::path::Path;

use serde::Serialize;

use polars::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::ingest::pipeline::{self, ReadOptions, ReadStats};
use crate::progress::Progress;
use crate::source::{InputFile, Inputs};
use crate::store::dedup::PartitionSeen;
use crate::store::{InputRecord, Store};

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
    // De-duplicated against the partitions being written (see `dedup`): their keys are read from the
    // store when a batch first touches them and forgotten when a batch goes by without them.
    let mut seen = PartitionSeen::forgetting();
    let total: u64 = todo.iter().map(|f| f.size).sum();
    let progress = Progress::new(todo.len() as u64, total, quiet);
    let run = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), std::process::id());
    // Claim the store as a writer, removing what crashed writers left (see `Store::recover`).
    store.start_writing(&run)?;
    // A batch's decoded JSON is a sixteenth of the memory limit: two are held, one being read and
    // one written, and a run of files per reader of the next (its frame and the Parquet encoding take a few times that).
    let budget = (opts.memory_limit / 16).max(4 << 20);
    // The next batch is read while the last is de-duplicated and written (`read_ahead`).
    let batches: Vec<&[InputFile]> =
        pipeline::batches(&todo, budget, BATCH_FILES, pipeline::estimated_decoded_bytes).collect();
    let mut n = 0usize;
    pipeline::read_ahead(batches, opts, &progress, |batch, batch_read| {
        let (df, batch_read) = batch_read?;
        let (first, dupes) = seen.first_occurrences(&df, |p| store.partition_event_keys(p, &changed))?;
        let df = if dupes == 0 {
            df
        } else {
            let first: BooleanChunked = first.into_iter().collect();
            df.filter(&first).context("dropping duplicate events")?
        };
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
        seen.set_aside_idle()?;
        stats.batches += 1;
        n += 1;
        Ok(())
    })?;
    progress.finish();
    Ok((stats, read))
}
