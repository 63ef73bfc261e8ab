//! The out-of-core dataset: how a question reads more events than fit in `--memory-limit`.
//!
//! Events arrive in batches (raw files read a batch at a time, a store's rows as the streaming engine
//! produces them), de-duplicated, filtered and selected as they come (`dataset::spilled`: the first
//! copy of an event in input order wins, as in memory), and each batch is cut by the hour of its
//! eventTime into Parquet pieces in a temporary directory (`raw/<hour>/<batch>.parquet`). Then each
//! hour is read alone, sorted by (event_time, event_id) and written back as one file (pieces of an
//! hour are read in batch order and rows within a piece keep their input order, so equal keys keep
//! it too). Questions scan those files in hour order with Polars' streaming engine: memory is bounded
//! by one batch and one hour, never by the number of events, and the rows come in time order without
//! a global sort.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::fs::TempDir;
use crate::ingest::frame::col_name as c;

const HOUR_MS: i64 = 3_600_000;

/// Rows per row group of an unordered spill's pieces (`SpillWriter::unordered`).
const UNORDERED_ROW_GROUP: usize = 32_768;

/// Writes batches of events into hourly pieces; `finish` turns them into sorted hours (or, made
/// `unordered`, keeps one piece per batch).
pub struct SpillWriter {
    dir: TempDir,
    /// Bytes of spill files (LZ4 Parquet on disk) one bucket may have to be de-duplicated and sorted
    /// in memory at once; larger buckets are cut into shorter time ranges first.
    bucket_bytes: u64,
    batches: u64,
    /// Hour (ms since the epoch / 1 h, floored) → its pieces, in batch order.
    hours: BTreeMap<i64, Vec<PathBuf>>,
    /// `unordered`: the batches as they came, one piece each, instead of `hours`.
    batch_pieces: Option<Vec<PathBuf>>,
}

/// The spilled rows: one file per hour, in time order, each sorted (or, from `SpillWriter::unordered`,
/// one per batch in input order).
pub struct Spilled {
    pub dir: TempDir,
    pub files: Vec<PathBuf>,
}

fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    write_parquet_groups(path, df, None)
}

/// `write_parquet` in row groups of at most `rows` (Polars' default when `None`).
pub(crate) fn write_parquet_groups(path: &Path, df: &mut DataFrame, rows: Option<usize>) -> Result<()> {
    let f = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    // LZ4: fast both ways; the pieces live only for this run.
    ParquetWriter::new(std::io::BufWriter::new(f))
        .with_compression(ParquetCompression::Lz4Raw)
        .with_statistics(StatisticsOptions::empty())
        .with_row_group_size(rows)
        .finish(df)
        .map(|_| ())
        .context("writing a spill file")
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    let f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(f).finish().context("reading a spill file")
}

impl SpillWriter {
    /// A writer of rows known to be distinct (events de-duplicated as they were read, a store's
    /// events, a question's output rows): sorted by (event_time, event_id), any columns including
    /// those two. `memory` is what sorting the buckets may use (two at a time, one per worker; a
    /// bucket in memory takes several times its compressed size on disk).
    pub fn distinct(memory: u64) -> Result<SpillWriter> {
        return_freed_memory();
        let bucket_bytes = (memory / 40).max(512 << 10);
        Ok(SpillWriter { dir: TempDir::new()?, bucket_bytes, batches: 0, hours: BTreeMap::new(), batch_pieces: None })
    }

    /// A writer for a question that takes the events in any order (`ReadOptions::any_order`): each
    /// batch is one piece, kept in batch order, and `finish` sorts nothing (its scan comes in input
    /// order). Over 1 M events `sql`'s group-by spent 3.5 of its 12 s sorting the hours. Freed memory
    /// goes back as for `distinct` (`report` over 10 M events 0.77-0.80 -> 0.70-0.71 GB for 83-88 ->
    /// 94-105 s; `sql`'s group-by over 1 M 0.35-0.36 -> 0.29 GB, +3%).
    pub fn unordered() -> Result<SpillWriter> {
        return_freed_memory();
        Ok(SpillWriter {
            dir: TempDir::new()?,
            bucket_bytes: 0,
            batches: 0,
            hours: BTreeMap::new(),
            batch_pieces: Some(Vec::new()),
        })
    }

    /// Add a batch of events (in input order, after the batches added before it).
    pub fn add(&mut self, mut df: DataFrame) -> Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        let batch = self.batches;
        self.batches += 1;
        if let Some(pieces) = &mut self.batch_pieces {
            let path = self.dir.path().join(format!("{batch:010}.parquet"));
            // A batch is larger than an hour of the ordered path: row groups of a streamed batch's
            // rows keep what a scan decodes at once as small.
            write_parquet_groups(&path, &mut df, Some(UNORDERED_ROW_GROUP))?;
            pieces.push(path);
            return Ok(());
        }
        for (hour, mut piece) in cut_by_time(&df, |t| t.div_euclid(HOUR_MS))? {
            let dir = self.dir.path().join("raw").join(format!("{hour}"));
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let path = dir.join(format!("{batch:010}.parquet"));
            write_parquet(&path, &mut piece)?;
            self.hours.entry(hour).or_default().push(path);
        }
        Ok(())
    }

    /// De-duplicate and sort each hour (in parallel, one per worker), removing the pieces. An hour
    /// whose pieces exceed the bucket size is cut into shorter ranges first (exact all the same: the
    /// copies of an event share its eventTime).
    pub fn finish(self) -> Result<Spilled> {
        let SpillWriter { dir, hours, bucket_bytes, batch_pieces, .. } = self;
        if let Some(files) = batch_pieces {
            return Ok(Spilled { dir, files });
        }
        let out_dir = dir.path().join("hours");
        fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        let buckets: Vec<Bucket> = hours
            .into_iter()
            .map(|(hour, pieces)| Bucket {
                start: hour.saturating_mul(HOUR_MS),
                len: HOUR_MS,
                pieces,
                name: format!("{hour:012}"),
            })
            .collect();
        let workers = rayon::current_num_threads();
        let done = each_on_threads(buckets, workers, |bucket| bucket.sort(&out_dir, bucket_bytes))?;
        Ok(Spilled { dir, files: done.into_iter().flatten().collect() })
    }
}

/// From here on, let the allocator hand freed memory back to the system after 10 ms (mimalloc's
/// default; the binary turns it off at start, since the kernel's zeroing of returned pages cost a
/// scan of many small files a third of its time). Out of core, the phases allocate on different
/// threads (the readers, then Polars' sorting), and memory one phase freed but kept was not reused
/// by the next. Measured on `timeline`: 0.70 -> 0.43 GB over 1 M events, 1.36 -> 1.18 GB over 10 M
/// (still over the 1 GiB default: see README, Memory), for 15-20% more time.
pub(crate) fn return_freed_memory() {
    // mimalloc's `mi_option_purge_delay` (see mimalloc.h); harmless when another allocator is the
    // global one.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: a plain option setter; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
}

/// `f` of each item, in the items' order, on `workers` plain threads taking the next item as they
/// finish one: at most `workers` items are in flight. Not rayon: a rayon worker that waits inside
/// Polars (which has a pool of its own) runs other queued items meanwhile, so every hour of a run was
/// started at once and their frames held together (1.16 GB over 10 M events, where two hours take
/// 0.1 GB). The first error stops the workers from taking more.
fn each_on_threads<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let n = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let results = std::sync::Mutex::new(Vec::with_capacity(n));
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, n.max(1)) {
            scope.spawn(|| {
                while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, item)) = next else { break };
                    let r = f(item);
                    failed.fetch_or(r.is_err(), std::sync::atomic::Ordering::Relaxed);
                    results.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// A time range `[start, start + len)` of spilled events and the pieces that hold them.
struct Bucket {
    start: i64,
    len: i64,
    pieces: Vec<PathBuf>,
    name: String,
}

/// Into how many ranges a bucket too large for memory is cut.
const FAN_OUT: i64 = 16;

impl Bucket {
    fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| fs::metadata(p).map_or(0, |m| m.len())).sum()
    }

    /// The bucket's rows sorted, as one or more files in time order.
    fn sort(self, out_dir: &Path, budget: u64) -> Result<Vec<PathBuf>> {
        if self.len > 1 && self.pieces.len() > 1 && self.bytes() > budget {
            return self.split(out_dir, budget);
        }
        let mut df = read_parquet(&self.pieces[0])?;
        for p in &self.pieces[1..] {
            df.vstack_mut_owned(read_parquet(p)?).context("stacking a bucket")?;
        }
        let mut df = df.sort([c::EVENT_TIME, c::EVENT_ID], super::ascending(2)).context("sorting a bucket")?;
        let path = out_dir.join(format!("{}.parquet", self.name));
        write_parquet(&path, &mut df)?;
        remove(&self.pieces);
        Ok(vec![path])
    }

    /// Cut each piece into `FAN_OUT` shorter ranges (keeping the pieces' order in each), then sort
    /// each range in turn.
    fn split(self, out_dir: &Path, budget: u64) -> Result<Vec<PathBuf>> {
        let step = (self.len + FAN_OUT - 1) / FAN_OUT;
        let dir = self.pieces[0].with_extension("split");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut subs: Vec<Vec<PathBuf>> = vec![Vec::new(); FAN_OUT as usize];
        for (n, piece) in self.pieces.iter().enumerate() {
            let df = read_parquet(piece)?;
            let range = |t: i64| ((t - self.start).clamp(0, self.len - 1) / step) as usize;
            for (k, mut sub) in cut_by_time(&df, range)? {
                let path = dir.join(format!("{k:02}-{n:010}.parquet"));
                write_parquet(&path, &mut sub)?;
                subs[k].push(path);
            }
            let _ = fs::remove_file(piece);
        }
        let mut out = Vec::new();
        for (k, pieces) in subs.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            let start = self.start + k as i64 * step;
            let len = step.min(self.start + self.len - start);
            let name = format!("{}-{k:02}", self.name);
            out.extend(Bucket { start, len, pieces, name }.sort(out_dir, budget)?);
        }
        Ok(out)
    }
}

/// The rows of `df` cut by `key` of their eventTime (ms), each part in the rows' order, by key.
fn cut_by_time<K: Ord>(df: &DataFrame, key: impl Fn(i64) -> K) -> Result<BTreeMap<K, DataFrame>> {
    let times = df.column(c::EVENT_TIME).context(c::EVENT_TIME)?.cast(&DataType::Int64).context("event_time")?;
    let mut rows: BTreeMap<K, Vec<IdxSize>> = BTreeMap::new();
    for (i, t) in times.i64().context("event_time")?.iter().enumerate() {
        // eventTime is never null in the frame (records without one are rejected); keep it safe.
        rows.entry(key(t.unwrap_or(i64::MIN))).or_default().push(i as IdxSize);
    }
    let mut out = BTreeMap::new();
    for (k, idx) in rows {
        let part = if idx.len() == df.height() {
            df.clone()
        } else {
            df.take(&IdxCa::from_vec("idx".into(), idx)).context("cutting events by time")?
        };
        out.insert(k, part);
    }
    Ok(out)
}

fn remove(paths: &[PathBuf]) {
    for p in paths {
        let _ = fs::remove_file(p);
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

/// Rows a question selects and lists in time order (a row output, or the events a time-ordered
/// question reads), collected as they stream by: copied out of their batches (see `owned`) and held
/// while they take under `budget` bytes, spilled past it (a `SpillWriter` of distinct rows, by the
/// hour). Memory: the budget and one batch, whatever the number of rows.
pub struct TimeOrderedRows {
    /// Rows held, as gathered pieces (see `GATHER`), then the batches' pieces not yet gathered.
    held: Vec<DataFrame>,
    recent: Vec<DataFrame>,
    held_bytes: u64,
    budget: u64,
    memory_limit: u64,
    spill: Option<SpillWriter>,
}

/// What `TimeOrderedRows` collected.
pub enum Collected {
    /// Every row, in one frame in arrival order (`None`: no row came).
    Held(Option<DataFrame>),
    /// Every row spilled; its scan comes in (event_time, event_id) order.
    Spilled(Spilled),
}

/// Held pieces gathered into one frame at a time (a chunk per column for this many batches, not one
/// per batch).
const GATHER: usize = 64;

impl TimeOrderedRows {
    /// Hold up to `budget` bytes; a spill uses `memory_limit` as `SpillWriter::distinct` does.
    pub fn new(budget: u64, memory_limit: u64) -> Self {
        TimeOrderedRows { held: Vec::new(), recent: Vec::new(), held_bytes: 0, budget, memory_limit, spill: None }
    }

    /// Add rows (distinct from every row added before; each needs event_time and event_id).
    pub fn add(&mut self, rows: DataFrame) -> Result<()> {
        if rows.height() == 0 {
            return Ok(());
        }
        if let Some(spill) = &mut self.spill {
            return spill.add(rows);
        }
        let rows = owned(rows).context("copying rows out of their batch")?;
        self.held_bytes += rows.estimated_size() as u64;
        self.recent.push(rows);
        if self.held_bytes > self.budget {
            let mut spill = SpillWriter::distinct(self.memory_limit)?;
            for rows in self.held.drain(..).chain(self.recent.drain(..)) {
                spill.add(rows)?;
            }
            self.spill = Some(spill);
        } else if self.recent.len() >= GATHER {
            // Only the recent pieces are copied: copying all that is held would take twice the
            // budget for a moment.
            let piece = owned(stack(std::mem::take(&mut self.recent))?).context("gathering rows")?;
            self.held.push(piece);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Collected> {
        match self.spill {
            // Once spilling, every batch went to the spill as it came.
            Some(spill) => Ok(Collected::Spilled(spill.finish()?)),
            None if self.held.is_empty() && self.recent.is_empty() => Ok(Collected::Held(None)),
            None => Ok(Collected::Held(Some(stack(self.held.into_iter().chain(self.recent).collect())?))),
        }
    }
}

/// Rows kept in the order they come, to be read again (the report's `detect` findings, which five
/// of its sections ask about): held while they take under `budget` bytes; past it, every row goes to
/// numbered Parquet pieces of the budget's size (between 256 KiB and 32 MiB in memory). Memory: the
/// budget, whatever the number of rows.
pub struct OrderedRows {
    held: Vec<DataFrame>,
    held_bytes: u64,
    budget: u64,
    spill: Option<(TempDir, Vec<PathBuf>)>,
}

/// The rows `OrderedRows` kept, as a lazy frame in their order (its pieces live as long as it).
pub struct Kept {
    pub rows: LazyFrame,
    _pieces: Option<TempDir>,
}

impl OrderedRows {
    pub fn new(budget: u64) -> Self {
        OrderedRows { held: Vec::new(), held_bytes: 0, budget, spill: None }
    }

    /// Add rows (after those added before; all with the same columns).
    pub fn add(&mut self, rows: DataFrame) -> Result<()> {
        if rows.height() == 0 {
            return Ok(());
        }
        let rows = owned(rows).context("copying rows out of their batch")?;
        self.held_bytes += rows.estimated_size() as u64;
        self.held.push(rows);
        if self.spill.is_some() {
            if self.held_bytes > self.budget.clamp(256 << 10, 32 << 20) {
                self.write_piece()?;
            }
        } else if self.held_bytes > self.budget {
            self.spill = Some((TempDir::new()?, Vec::new()));
            self.write_piece()?;
        }
        Ok(())
    }

    fn write_piece(&mut self) -> Result<()> {
        let Some((dir, pieces)) = &mut self.spill else { return Ok(()) };
        if self.held.is_empty() {
            return Ok(());
        }
        let mut df = stack(std::mem::take(&mut self.held))?;
        self.held_bytes = 0;
        let path = dir.path().join(format!("{:010}.parquet", pieces.len()));
        write_parquet(&path, &mut df)?;
        pieces.push(path);
        Ok(())
    }

    /// Every row added, in order; `empty` gives the columns when none was.
    pub fn finish(mut self, empty: DataFrame) -> Result<Kept> {
        self.write_piece()?;
        match self.spill {
            None if self.held.is_empty() => Ok(Kept { rows: empty.lazy(), _pieces: None }),
            None => Ok(Kept { rows: stack(self.held)?.lazy(), _pieces: None }),
            Some((dir, pieces)) => {
                let paths: Vec<PlRefPath> =
                    pieces.iter().map(|p| PlRefPath::new(p.to_string_lossy().as_ref())).collect();
                let args = ScanArgsParquet {
                    hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
                    ..Default::default()
                };
                let rows = LazyFrame::scan_parquet_files(paths.into(), args).context("scanning kept rows")?;
                Ok(Kept { rows, _pieces: Some(dir) })
            }
        }
    }
}

/// Frames with the same columns as one frame, their chunks appended (not copied).
fn stack(parts: Vec<DataFrame>) -> Result<DataFrame> {
    let mut parts = parts.into_iter();
    let Some(mut all) = parts.next() else { return Ok(DataFrame::empty()) };
    for part in parts {
        all.vstack_mut_owned(part).context("gathering rows")?;
    }
    Ok(all)
}

/// The frame with every column copied into buffers of its own. A value taken out of a batch (a
/// filtered row, a group key, a first or smallest message) can be a view into the batch's buffers,
/// or a slice of them, and keep all of them alive: rows kept across batches would hold every
/// batch (measured: the 28 k console sign-in failures of 100 M generated events held 0.45 GB of
/// eventTime columns).
pub fn owned(df: DataFrame) -> PolarsResult<DataFrame> {
    let height = df.height();
    let columns = df
        .columns()
        .iter()
        .map(|col| {
            let name = col.name().clone();
            match col.dtype() {
                DataType::String => Ok(col.str()?.iter().collect::<StringChunked>().with_name(name).into_column()),
                DataType::Boolean => Ok(col.bool()?.iter().collect::<BooleanChunked>().with_name(name).into_column()),
                DataType::Datetime(_, _) => {
                    let copied: Int64Chunked = col.datetime()?.physical().iter().collect();
                    copied.with_name(name).into_column().cast(col.dtype())
                }
                DataType::Int64 => Ok(col.i64()?.iter().collect::<Int64Chunked>().with_name(name).into_column()),
                DataType::UInt64 => Ok(col.u64()?.iter().collect::<UInt64Chunked>().with_name(name).into_column()),
                DataType::UInt32 => Ok(col.u32()?.iter().collect::<UInt32Chunked>().with_name(name).into_column()),
                other => Err(PolarsError::ComputeError(format!("no copy for a column of type {other}").into())),
            }
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// With `TRAILSCOPE_MEMTRACE` set, print the peak and current RSS at a phase of an out-of-core run
/// (how the README's memory figures were split by phase), and the seconds since the first call.
pub fn memtrace(what: &str) {
    if std::env::var_os("TRAILSCOPE_MEMTRACE").is_none() {
        return;
    }
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let pick = |k: &str| {
        s.lines().find(|l| l.starts_with(k)).unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_string()
    };
    static START: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
    let at = START.elapsed().as_secs_f64();
    eprintln!("memtrace {what}: hwm {} KB rss {} KB at {at:.2} s", pick("VmHWM"), pick("VmRSS"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Each item sorts a frame, as a bucket does: Polars works in a pool of its own, and a rayon
    /// worker waiting for it would start more items meanwhile.
    fn polars_work(n: i64) -> Result<i64> {
        let df = df!("t" => (0..20_000i64).map(|i| (i * 7919 + n) % 20_000).collect::<Vec<_>>()).context("a frame")?;
        let sorted = df.sort(["t"], SortMultipleOptions::default()).context("sorting")?;
        Ok(sorted.column("t").context("t")?.i64().context("t")?.get(0).unwrap_or(-1))
    }

    #[test]
    fn each_on_threads_keeps_order_and_at_most_workers_in_flight() {
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = each_on_threads((0..64).collect(), 2, |i: i64| {
            most.fetch_max(in_flight.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            let first = polars_work(i)?;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok((i, first))
        })
        .unwrap();
        assert_eq!(out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..64).collect::<Vec<_>>());
        assert!(out.iter().all(|(_, first)| *first == 0));
        assert!(most.load(Ordering::SeqCst) <= 2, "{} items in flight", most.load(Ordering::SeqCst));
    }

    #[test]
    fn each_on_threads_stops_at_an_error() {
        let done = AtomicUsize::new(0);
        let r = each_on_threads((0..1000).collect(), 2, |i: usize| {
            done.fetch_add(1, Ordering::SeqCst);
            if i == 3 {
                return Err(Error::Usage("item 3".into()));
            }
            Ok(i)
        });
        assert!(matches!(r, Err(Error::Usage(m)) if m == "item 3"));
        assert!(done.load(Ordering::SeqCst) < 1000);
    }
}

#[cfg(test)]
mod collector_tests {
    use super::*;

    /// Rows at times `ts` (ms; ids "e<time>-<n>" so that equal times sort by arrival), with a text
    /// column long enough to live in a buffer, a flag and a count.
    fn rows(ts: &[i64], first: usize) -> DataFrame {
        let n = ts.len();
        let ids: Vec<String> = ts.iter().enumerate().map(|(i, t)| format!("e{t:06}-{:04}", first + i)).collect();
        let notes: Vec<Option<String>> = (0..n)
            .map(|i| (i % 3 != 0).then(|| format!("a note long enough to need a buffer, row {}", first + i)))
            .collect();
        let time = Int64Chunked::from_vec(c::EVENT_TIME.into(), ts.to_vec())
            .into_datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC))
            .into_column();
        let mut df = df!(
            c::EVENT_ID => ids,
            "note" => notes,
            "flag" => (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            "count" => (0..n).map(|i| (first + i) as u32).collect::<Vec<_>>(),
        )
        .expect("a frame");
        df.insert_column(0, time).expect("event_time");
        df
    }

    fn batches() -> Vec<DataFrame> {
        // Three hours, out of order across and within batches, some times repeated.
        let hour = HOUR_MS;
        vec![
            rows(&[2 * hour + 5, 10, hour + 7, 10], 0),
            rows(&[], 4),
            rows(&[hour, 3, 2 * hour, 2 * hour + 5], 4),
            rows(&[7, hour + 7], 8),
        ]
    }

    fn collect(budget: u64) -> Collected {
        let mut collector = TimeOrderedRows::new(budget, 64 << 20);
        for b in batches() {
            // A filtered batch: what a question hands on.
            let mask: BooleanChunked = (0..b.height()).map(|i| i != 1).collect();
            let picked = b.filter(&mask).expect("filtering");
            collector.add(picked).expect("adding rows");
        }
        collector.finish().expect("finishing")
    }

    fn expected() -> DataFrame {
        let mut all = DataFrame::empty();
        for b in batches() {
            let mask: BooleanChunked = (0..b.height()).map(|i| i != 1).collect();
            all.vstack_mut_owned(b.filter(&mask).expect("filtering")).expect("stacking");
        }
        all
    }

    #[test]
    fn rows_under_the_budget_are_held_in_arrival_order() {
        let Collected::Held(Some(held)) = collect(1 << 30) else { panic!("rows under the budget were not held") };
        assert!(held.equals_missing(&expected()), "{held}\n{}", expected());
    }

    #[test]
    fn held_batches_are_gathered_a_few_at_a_time() {
        let mut collector = TimeOrderedRows::new(1 << 30, 64 << 20);
        let mut want = DataFrame::empty();
        for n in 0..3 * GATHER + 5 {
            let batch = rows(&[(n as i64 * 7919) % 1000, 5], 2 * n);
            collector.add(batch.clone()).expect("adding rows");
            want.vstack_mut_owned(batch).expect("stacking");
        }
        let Collected::Held(Some(held)) = collector.finish().expect("finishing") else { panic!("not held") };
        assert!(held.equals_missing(&want), "rows out of arrival order");
        // Three gathered pieces and the five batches after them.
        assert!(held.columns().iter().all(|c| c.n_chunks() == 3 + 5), "{:?}", held.columns()[0].n_chunks());
    }

    #[test]
    fn rows_past_the_budget_come_back_in_time_order() {
        let Collected::Spilled(spilled) = collect(0) else { panic!("rows past the budget were not spilled") };
        let back = spilled.scan().expect("scan").collect().expect("reading back");
        let sorted = expected().sort([c::EVENT_TIME, c::EVENT_ID], crate::query::ascending(2)).expect("sorting");
        assert!(back.equals_missing(&sorted), "{back}\n{sorted}");
        assert!(spilled.files.len() >= 3, "one file per hour: {:?}", spilled.files);
    }

    #[test]
    fn no_rows_is_held_nothing() {
        let mut collector = TimeOrderedRows::new(0, 1 << 20);
        collector.add(rows(&[], 0)).expect("adding no rows");
        assert!(matches!(collector.finish().expect("finishing"), Collected::Held(None)));
    }

    #[test]
    fn owned_copies_every_column_out_of_its_batch() {
        let batch = rows(&[1, 2, 3, 4, 5, 6], 0);
        let slice = batch.slice(2, 3);
        let copy = owned(slice.clone()).expect("copying");
        assert!(copy.equals_missing(&slice));
        let time_of = |df: &DataFrame| -> *const i64 {
            let column = df.column(c::EVENT_TIME).expect("event_time").datetime().expect("datetime").physical().clone();
            let chunk = column.downcast_iter().next().expect("a chunk");
            chunk.values().as_ptr()
        };
        // A slice shares its batch's buffer; the copy has one of its own.
        assert_eq!(time_of(&slice), time_of(&batch).wrapping_add(2));
        assert_ne!(time_of(&copy), time_of(&slice));
    }

    /// Rows kept by `OrderedRows` come back in the order they were added, held (a large budget) or
    /// spilled to pieces on disk (no budget; these few rows make one piece), and its pieces live as
    /// long as the rows.
    #[test]
    fn ordered_rows_come_back_in_their_order_held_or_spilled() {
        let empty = rows(&[], 0);
        for budget in [0, 1 << 30] {
            let mut kept = OrderedRows::new(budget);
            for b in batches() {
                kept.add(b).expect("adding rows");
            }
            let spilled = kept.spill.as_ref().map(|(_, pieces)| pieces.len());
            let back = kept.finish(empty.clone()).expect("finishing");
            let all = back.rows.collect().expect("reading back");
            let mut want = DataFrame::empty();
            for b in batches() {
                want.vstack_mut_owned(b).expect("stacking");
            }
            assert!(all.equals_missing(&want), "budget {budget}: {all}\n{want}");
            assert_eq!(spilled.is_some(), budget == 0, "budget {budget}: spilled {spilled:?}");
            assert_eq!(back._pieces.is_some(), budget == 0);
        }
        let none = OrderedRows::new(0).finish(empty.clone()).expect("finishing");
        assert!(none.rows.collect().expect("no rows").equals_missing(&empty));
    }
}
