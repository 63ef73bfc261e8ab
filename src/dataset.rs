//! Turning the command line's INPUTs into one lazy events frame: raw archives are read (see
//! `scan.rs`), stores are scanned lazily with partition pruning, the shared filters are applied and
//! duplicate eventIDs dropped. Every question starts from a `Dataset`.

use std::path::PathBuf;

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::filter::Filter;
use crate::progress::Progress;
use crate::scan::{self, ReadOptions, ReadStats};
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
    let inputs = source::discover(paths, filter)?;
    from_inputs(inputs, filter, opts, quiet)
}

pub fn from_inputs(inputs: Inputs, filter: &Filter, opts: &ReadOptions, quiet: bool) -> Result<Dataset> {
    let Inputs { files, stores, skipped } = inputs;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new(files.len() as u64, total, quiet);
    let (raw, mut stats) = scan::read_files(&files, opts, &progress)?;
    progress.finish();
    for s in skipped {
        stats.add_skipped(s);
    }
    let mut lazies: Vec<LazyFrame> = Vec::new();
    for root in &stores {
        lazies.push(Store::open(root)?.scan(filter)?);
    }
    if raw.height() > 0 || lazies.is_empty() {
        lazies.push(raw.lazy());
    }
    let filtered = |lf: LazyFrame| match filter.expr() {
        Some(e) => lf.filter(e),
        None => lf,
    };
    // A single store holds each eventID once already; anything else is de-duplicated here.
    if lazies.len() == 1 && !stores.is_empty() {
        let events = filtered(lazies.pop().expect("one"));
        return Ok(Dataset { events, stats, duplicates: 0, stores });
    }
    let all = concat(lazies, UnionArgs::default()).context("combining inputs")?;
    let df = filtered(all).collect().context("filtering events")?;
    let (df, duplicates) = scan::dedupe(df, &mut hashbrown::HashSet::new())?;
    Ok(Dataset { events: df.lazy(), stats, duplicates, stores })
}
