//! The out-of-core dataset: how a question reads more events than fit in `--memory-limit`.
//!
//! Events arrive in batches (raw files read a batch at a time, a store's rows as the streaming engine
//! produces them). Each batch is filtered and cut by the hour of its eventTime into Parquet pieces in a
//! temporary directory (`raw/<hour>/<batch>.parquet`). Then each hour is read alone, de-duplicated by
//! eventID — exact, because a duplicate delivery carries the same eventTime, so every copy of an event
//! lands in the same hour — sorted by (event_time, event_id) and written back as one file. Questions
//! scan those files in hour order with Polars' streaming engine: memory is bounded by one batch and
//! one hour, never by the number of events, and the rows come in time order without a global sort.
//!
//! The first copy of an event in input order wins, as in memory: pieces of an hour are read in batch
//! order and rows within a piece keep their input order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::ingest::pipeline;

const HOUR_MS: i64 = 3_600_000;

/// A temporary directory removed when dropped (also on error and unwinding).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under `$TMPDIR` (or `/tmp`), named by process and time so runs never share one.
    pub fn new() -> Result<TempDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(".trailscope-spill-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes batches of events into hourly pieces; `finish` turns them into de-duplicated, sorted hours.
pub struct SpillWriter {
    dir: TempDir,
    filter: Option<Expr>,
    batches: u64,
    /// Hour (ms since the epoch / 1 h, floored) → its pieces, in batch order.
    hours: BTreeMap<i64, Vec<PathBuf>>,
}

/// The spilled events: one file per hour, in time order, each sorted and free of duplicates.
pub struct Spilled {
    pub dir: TempDir,
    pub files: Vec<PathBuf>,
    /// Repeats of an eventID dropped (among the rows the filter selected).
    pub duplicates: u64,
    /// Rows in the largest hour: what the de-duplication held in memory at once.
    pub largest_hour: u64,
}

fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let f = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    // LZ4: fast both ways; the pieces live only for this run.
    ParquetWriter::new(std::io::BufWriter::new(f))
        .with_compression(ParquetCompression::Lz4Raw)
        .with_statistics(StatisticsOptions::empty())
        .finish(df)
        .map(|_| ())
        .context("writing a spill file")
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(f).finish().context("reading a spill file")
}

impl SpillWriter {
    /// Rows not selected by `filter` are dropped as they arrive.
    pub fn new(filter: Option<Expr>) -> Result<SpillWriter> {
        Ok(SpillWriter { dir: TempDir::new()?, filter, batches: 0, hours: BTreeMap::new() })
    }

    /// Add a batch of events (in input order, after the batches added before it).
    pub fn add(&mut self, df: DataFrame) -> Result<()> {
        let df = match &self.filter {
            Some(e) => df.lazy().filter(e.clone()).collect().context("filtering events")?,
            None => df,
        };
        if df.height() == 0 {
            return Ok(());
        }
        let batch = self.batches;
        self.batches += 1;
        let times = df.column(c::EVENT_TIME).context(c::EVENT_TIME)?.cast(&DataType::Int64).context("event_time")?;
        let times = times.i64().context("event_time")?;
        let mut rows: BTreeMap<i64, Vec<IdxSize>> = BTreeMap::new();
        for (i, t) in times.iter().enumerate() {
            // eventTime is never null in the frame (records without one are rejected); keep it safe.
            let hour = t.map_or(i64::MIN, |t| t.div_euclid(HOUR_MS));
            rows.entry(hour).or_default().push(i as IdxSize);
        }
        for (hour, idx) in rows {
            let dir = self.dir.path().join("raw").join(format!("{hour}"));
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let mut piece = if idx.len() == df.height() {
                df.clone()
            } else {
                df.take(&IdxCa::from_vec("idx".into(), idx)).context("cutting a batch by hour")?
            };
            let path = dir.join(format!("{batch:010}.parquet"));
            write_parquet(&path, &mut piece)?;
            self.hours.entry(hour).or_default().push(path);
        }
        Ok(())
    }

    /// De-duplicate and sort each hour (in parallel, one hour per worker), removing the pieces.
    pub fn finish(self) -> Result<Spilled> {
        let SpillWriter { dir, hours, .. } = self;
        let out_dir = dir.path().join("hours");
        fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        let hours: Vec<(i64, Vec<PathBuf>)> = hours.into_iter().collect();
        let done: Vec<(PathBuf, u64, u64)> = hours
            .par_iter()
            .map(|(hour, pieces)| -> Result<(PathBuf, u64, u64)> {
                let mut df = read_parquet(&pieces[0])?;
                for p in &pieces[1..] {
                    df.vstack_mut_owned(read_parquet(p)?).context("stacking an hour")?;
                }
                let rows = df.height() as u64;
                let (df, dupes) = pipeline::dedupe(df, &mut hashbrown::HashSet::new())?;
                let mut df = df.sort([c::EVENT_TIME, c::EVENT_ID], super::ascending(2)).context("sorting an hour")?;
                let path = out_dir.join(format!("{hour:012}.parquet"));
                write_parquet(&path, &mut df)?;
                for p in pieces {
                    let _ = fs::remove_file(p);
                }
                Ok((path, dupes, rows))
            })
            .collect::<Result<_>>()?;
        let duplicates = done.iter().map(|(_, d, _)| d).sum();
        let largest_hour = done.iter().map(|(_, _, r)| *r).max().unwrap_or(0);
        Ok(Spilled { dir, files: done.into_iter().map(|(p, _, _)| p).collect(), duplicates, largest_hour })
    }
}

impl Spilled {
    /// The events as one lazy scan, in time order.
    pub fn scan(&self) -> Result<LazyFrame> {
        if self.files.is_empty() {
            return Ok(crate::ingest::frame::empty()?.lazy());
        }
        let paths: Vec<PlRefPath> = self.files.iter().map(|p| PlRefPath::new(p.to_string_lossy().as_ref())).collect();
        let args = ScanArgsParquet {
            hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
            ..Default::default()
        };
        LazyFrame::scan_parquet_files(paths.into(), args).context("scanning spilled events")
    }
}
