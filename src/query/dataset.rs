//! Turning the command line's INPUTs into one lazy events frame: raw archives are read (see
//! `ingest::pipeline`), stores are scanned lazily with partition pruning, the shared filters are applied and
//! duplicate eventIDs dropped. Every question starts from a `Dataset`.

use std::path::PathBuf;

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::ingest::pipeline::{self, ReadOptions, ReadStats};
use crate::progress::Progress;
use crate::source::filter::Filter;
use crate::source::{self, Inputs};
use crate::store::Store;

/// The events selected by the inputs and filters, with the accounting of how they were read.
pub struct Dataset {
    pub events: LazyFrame,
    pub stats: ReadStats,
    /// Events dropped as repeats of an eventID already seen.
    pub duplicates: u64,
    pub stores: Vec<PathBuf>,
}

/// Load from the command line's inputs.
pub fn load(paths: &[PathBuf], filter: &Filter, opts: &ReadOptions, quiet: bool) -> Result<Dataset> {
    // An s3:// store is read from its local mirror, brought up to date first.
    let mut local = Vec::with_capacity(paths.len());
    for p in paths {
        match p.to_str().filter(|s| crate::store::s3::is_s3(s)) {
            Some(url) => local.push(crate::store::s3::Mirror::sync(url, &opts.s3)?.dir),
            None => local.push(p.clone()),
        }
    }
    let inputs = source::discover(&local, filter)?;
    from_inputs(inputs, filter, opts, quiet)
}

pub fn from_inputs(inputs: Inputs, filter: &Filter, opts: &ReadOptions, quiet: bool) -> Result<Dataset> {
    let Inputs { files, stores, skipped } = inputs;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new(files.len() as u64, total, quiet);
    let (raw, mut stats) = pipeline::read_files(&files, opts, &progress)?;
    progress.finish();
    for s in skipped {
        stats.add_skipped(s);
    }
    // A single store holds each eventID once already: answer from it lazily, with partition pruning.
    if stores.len() == 1 && raw.height() == 0 {
        let lf = Store::open(&stores[0])?.scan(filter)?;
        let events = match filter.expr() {
            Some(e) => lf.filter(e),
            None => lf,
        };
        return Ok(Dataset { events, stats, duplicates: 0, stores });
    }
    // Otherwise: de-duplicate over every row in input order first (so the first delivery of an event
    // decides, whether or not the filters select it), then filter; `duplicates` counts the selected
    // repeats. Stores are read whole here, since pruning before de-duplication could change the answer.
    let mut lazies: Vec<LazyFrame> = Vec::new();
    for root in &stores {
        lazies.push(Store::open(root)?.scan(&Filter::default())?);
    }
    lazies.push(raw.lazy());
    let mut all =
        concat(lazies, UnionArgs::default()).context("combining inputs")?.collect().context("reading inputs")?;
    let (first, _) = pipeline::first_occurrences(&all, &mut hashbrown::HashSet::new())?;
    all.with_column(first.with_name(FIRST.into()).into_column()).context("marking first occurrences")?;
    let mut lf = all.lazy();
    if let Some(e) = filter.expr() {
        lf = lf.filter(e);
    }
    let df = lf.collect().context("filtering events")?;
    let first = df.column(FIRST).context(FIRST)?.bool().context(FIRST)?.clone();
    let duplicates = first.len() as u64 - first.sum().unwrap_or(0) as u64;
    let df = df.filter(&first).context("dropping duplicate events")?.drop(FIRST).context(FIRST)?;
    Ok(Dataset { events: df.lazy(), stats, duplicates, stores })
}

/// Temporary column: is this row the first of its eventID?
const FIRST: &str = "__trailscope_first";
