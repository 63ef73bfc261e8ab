//! The ingest pipeline: files are read, inflated and parsed in parallel, each worker fills its
//! own `FrameBuilder`, and the pieces are stacked in input order. Every file ends as read, skipped or
//! failed with a reason; every record as a row or a counted rejection.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{PolarsContext, Result};
use crate::ingest::decode::{self, DecodeBuffer, DecodeError};
use crate::ingest::frame::FrameBuilder;
use crate::ingest::parse::{self, ParseError};
use crate::ingest::record::{text, Leaves, RawEvent, Reject};
use crate::ingest::window::{self, GiveUp};
use crate::progress::Progress;
use crate::source::{InputFile, Skipped};

/// Default cap on the decompressed size of one file. CloudTrail delivery files are a few MB; the
/// largest real ones are well under 1 GiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub max_file_bytes: u64,
    /// Write the absolute path into `source_file` (the store does, so that rows match its manifests);
    /// otherwise the path as given.
    pub absolute_source_file: bool,
    /// Fill only these string columns (the rest are null); `None` fills all.
    pub columns: Option<&'static [&'static str]>,
    /// What a command may hold in memory (`--memory-limit`): decides whether inputs are read at once
    /// or a batch at a time (see `query::dataset`).
    pub memory_limit: u64,
    /// The question takes the events in any order (it groups them, or sorts only the rows it
    /// lists: `sql`, `report`): out of core, the batches are spilled as they come, not cut by the
    /// hour and sorted (see `query::spill`).
    pub any_order: bool,
    /// Files whose text is at least this many bytes are read a window of records at a time
    /// (`ingest::window`), so that a worker does not hold a large file's text and records whole; a
    /// window's records take at most half of it in text (and those of one read, about 1 MB).
    pub windowed_from: u64,
}

/// Files from this size of text are read a window at a time: in the generated 10 M-event tree, 17.6%
/// of the text is in files of 8 MB and more (the largest 54 MB); real delivery files are mostly far
/// smaller. Read whole, a 54 MB file held 54 MB of text and ~40 MB of parsed records per worker.
pub const WINDOWED_FROM: u64 = 8 << 20;

/// The default `--memory-limit`: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            absolute_source_file: false,
            columns: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            any_order: false,
            windowed_from: WINDOWED_FROM,
        }
    }
}

/// Records of a file that could not become rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub path: String,
    pub records: u64,
    pub reason: String,
}

/// What reading one file came to.
#[derive(Debug)]
enum Outcome {
    Read { records: u64, rejected: BTreeMap<Reject, u64>, without_id: u64 },
    Skipped(String),
    Failed(String),
}

/// The accounting of one ingest: every file and every record is in exactly one bucket.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReadStats {
    /// Files read (they may hold zero events).
    pub files: u64,
    pub files_skipped: u64,
    pub files_failed: u64,
    /// Events read as rows, before de-duplication and filters.
    pub records: u64,
    /// Records that could not be rows (no or invalid eventTime, broken embedded event).
    pub records_rejected: u64,
    /// Rows without an eventID: kept, never de-duplicated.
    pub records_without_event_id: u64,
    /// Bytes on disk and after decompression, of the files read.
    pub bytes_read: u64,
    pub bytes_decoded: u64,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Skipped>,
    pub rejected: Vec<Rejected>,
}

impl ReadStats {
    pub fn merge(&mut self, other: ReadStats) {
        self.files += other.files;
        self.files_skipped += other.files_skipped;
        self.files_failed += other.files_failed;
        self.records += other.records;
        self.records_rejected += other.records_rejected;
        self.records_without_event_id += other.records_without_event_id;
        self.bytes_read += other.bytes_read;
        self.bytes_decoded += other.bytes_decoded;
        self.skipped.extend(other.skipped);
        self.failed.extend(other.failed);
        self.rejected.extend(other.rejected);
    }

    pub fn add_skipped(&mut self, s: Skipped) {
        self.files_skipped += 1;
        self.skipped.push(s);
    }

    pub fn add_failed(&mut self, f: Skipped) {
        self.files_failed += 1;
        self.failed.push(f);
    }
}

/// Does the name claim JSON? Then content that is not JSON is a failure, not a file to skip. Judged
/// by the name's bytes, so a name that is not UTF-8 claims what its suffix says (#13).
fn named_like_json(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.as_encoded_bytes().to_ascii_lowercase()).unwrap_or_default();
    [".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"].iter().any(|s| name.ends_with(s.as_bytes()))
}

thread_local! {
    /// Each worker's decompression buffer, reused from file to file.
    static BUFFER: std::cell::RefCell<DecodeBuffer> = std::cell::RefCell::new(DecodeBuffer::default());
}

/// Read one file into `out`. Rows are appended only once the whole file has parsed.
fn read_one(file: &InputFile, opts: &ReadOptions, out: &mut FrameBuilder, decoded: &AtomicU64) -> Outcome {
    BUFFER.with_borrow_mut(|buf| {
        let outcome = read_one_with(file, opts, out, decoded, buf);
        // Give back the space past the private share and the token for large files (see `decode`):
        // a worker that kept it would make the others wait for it.
        buf.release();
        outcome
    })
}

fn read_one_with(
    file: &InputFile,
    opts: &ReadOptions,
    out: &mut FrameBuilder,
    decoded: &AtomicU64,
    buf: &mut DecodeBuffer,
) -> Outcome {
    let content = match decode::read_content(&file.path, opts.max_file_bytes, buf) {
        Ok(c) => c,
        Err(DecodeError::Empty) if !named_like_json(&file.path) => {
            return Outcome::Skipped("empty file, not named as JSON".into())
        }
        Err(e @ DecodeError::Archive(_)) if !named_like_json(&file.path) => return Outcome::Skipped(e.to_string()),
        // Discovery skips special files; one that replaced a regular file since is skipped alike.
        Err(e @ DecodeError::NotRegular(_)) => return Outcome::Skipped(e.to_string()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    decoded.fetch_add(content.len() as u64, Ordering::Relaxed);
    KEPT_RECORDS.with(|kept| {
        let mut records = parse::recycle(kept.take());
        let outcome = push_records(&content, &mut records, file, opts, out);
        if records.capacity() * std::mem::size_of::<Leaves>() <= decode::PRIVATE_BYTES {
            kept.set(parse::recycle(records));
        }
        outcome
    })
}

thread_local! {
    /// A worker's vector of parsed records, kept between files (`parse::recycle`), within the
    /// space a worker keeps for decompression.
    static KEPT_RECORDS: Cell<Vec<Leaves<'static>>> = const { Cell::new(Vec::new()) };
}

/// Parse `content` into `records` and push its rows to `out`.
fn push_records<'a>(
    content: &'a [u8],
    records: &mut Vec<Leaves<'a>>,
    file: &InputFile,
    opts: &ReadOptions,
    out: &mut FrameBuilder,
) -> Outcome {
    match parse::parse_into(content, records) {
        Ok(_) => {}
        Err(ParseError::NotJson(start)) if !named_like_json(&file.path) => {
            return Outcome::Skipped(format!("not JSON (starts with {start:?})"))
        }
        Err(e @ ParseError::NotCloudTrail(_)) => return Outcome::Skipped(e.to_string()),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let mut counts = Counts::default();
    counts.push_all(records, out, &source_name(file, opts));
    counts.outcome()
}

/// The name a file's rows carry in `source_file`.
fn source_name(file: &InputFile, opts: &ReadOptions) -> String {
    if opts.absolute_source_file {
        crate::layout::input_key(&file.path)
    } else {
        crate::fs::display_path(&file.path)
    }
}

/// What a file's records came to so far: rows, rows without an eventID, rejections by reason.
#[derive(Default)]
struct Counts {
    rows: u64,
    without_id: u64,
    rejected: BTreeMap<Reject, u64>,
}

impl Counts {
    /// Push the rows of `records` to `out`, counting them.
    fn push_all(&mut self, records: &[Leaves<'_>], out: &mut FrameBuilder, source: &str) {
        for rec in records {
            let result = match rec.cloudtrail_event {
                Some(_) => push_embedded(rec, out, source),
                None => out.push(rec, source),
            };
            match result {
                Ok(has_id) => {
                    self.rows += 1;
                    self.without_id += u64::from(!has_id);
                }
                Err(r) => *self.rejected.entry(r).or_insert(0) += 1,
            }
        }
    }

    fn outcome(self) -> Outcome {
        Outcome::Read { records: self.rows, rejected: self.rejected, without_id: self.without_id }
    }
}

/// A large file read a window of records at a time (`ingest::window`): what it came to and its
/// rows, as a frame of their own; `None` to read it whole: it is not large, not in the delivery
/// shape as the windows cut it, or something in it is wrong, which reading it whole reports as for
/// any file (the rows read so far are dropped with the frame).
fn read_windowed(file: &InputFile, opts: &ReadOptions, decoded: &AtomicU64) -> Option<(Outcome, Option<DataFrame>)> {
    // Not opened when it cannot be large: a delivery file's text is 8-12 times its gzip (a file far
    // more compressed than 64 times is read whole, as any file was).
    if file.size.saturating_mul(64) < opts.windowed_from {
        return None;
    }
    let (map, gzip) = decode::map_if_large(&file.path, opts.windowed_from)?;
    let source = source_name(file, opts);
    let mut out = FrameBuilder::with_projection(opts.columns);
    let mut counts = Counts::default();
    let each = |records: &[Leaves<'_>]| -> std::result::Result<(), GiveUp> {
        counts.push_all(records, &mut out, &source);
        Ok(())
    };
    let window = usize::try_from(opts.windowed_from / 2).unwrap_or(usize::MAX).max(1);
    let read = if gzip {
        window::for_each_window(flate2::read::MultiGzDecoder::new(&map[..]), opts.max_file_bytes, window, each)
    } else {
        window::for_each_window(&map[..], opts.max_file_bytes, window, each)
    };
    let read = read.ok()?;
    let frame = if out.is_empty() { None } else { Some(out.finish().ok()?) };
    decoded.fetch_add(read, Ordering::Relaxed);
    Some((counts.outcome(), frame))
}

/// An Event-history record: the event is a JSON string in `CloudTrailEvent`.
fn push_embedded(rec: &Leaves<'_>, out: &mut FrameBuilder, source: &str) -> Result<bool, Reject> {
    let inner = text(rec.cloudtrail_event).ok_or(Reject::BadEmbeddedEvent)?;
    let ev: RawEvent = serde_json::from_str(&inner).map_err(|_| Reject::BadEmbeddedEvent)?;
    out.push(&Leaves::of(&ev), source)
}

/// A run of consecutive files read by one worker: its rows as frames in order (one, or several
/// around files read in windows; none when it has no rows), each file's outcome in order, and the
/// bytes its files decoded to.
struct Piece {
    frames: Vec<DataFrame>,
    outcomes: Vec<Outcome>,
    decoded: u64,
}

/// A piece being read: its rows (frames done, in order, then the rows being built), its files'
/// outcomes, the bytes they decoded to, and an error building a frame.
struct Reading {
    frames: Vec<DataFrame>,
    builder: FrameBuilder,
    outcomes: Vec<Outcome>,
    decoded: AtomicU64,
    error: Option<crate::error::Error>,
}

impl Reading {
    fn new(columns: Option<&[&str]>) -> Reading {
        Reading {
            frames: Vec::new(),
            builder: FrameBuilder::with_projection(columns),
            outcomes: Vec::new(),
            decoded: AtomicU64::new(0),
            error: None,
        }
    }

    /// Read the next file: a large one a window at a time, into a frame of its own, any other into
    /// the rows being built.
    fn read(mut self, file: &InputFile, opts: &ReadOptions, progress: &Progress) -> Reading {
        if let Some((outcome, frame)) = read_windowed(file, opts, &self.decoded) {
            let rows = frame.as_ref().map_or(0, DataFrame::height);
            if let Some(frame) = frame {
                // The rows built so far come first.
                if !self.builder.is_empty() {
                    let built = std::mem::replace(&mut self.builder, FrameBuilder::with_projection(opts.columns));
                    match built.finish() {
                        Ok(df) => self.frames.push(df),
                        Err(e) => self.error = self.error.take().or(Some(e)),
                    }
                }
                self.frames.push(frame);
            }
            self.outcomes.push(outcome);
            progress.file_done(file.size, rows as u64);
            return self;
        }
        let before = self.builder.len();
        self.outcomes.push(read_one(file, opts, &mut self.builder, &self.decoded));
        progress.file_done(file.size, (self.builder.len() - before) as u64);
        self
    }

    fn finish(mut self) -> Result<Piece> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.builder.is_empty() {
            self.frames.push(self.builder.finish()?);
        }
        Ok(Piece { frames: self.frames, outcomes: self.outcomes, decoded: self.decoded.into_inner() })
    }
}

/// Read `files` one after the other into one frame.
fn read_run(files: &[InputFile], opts: &ReadOptions, progress: &Progress) -> Result<Piece> {
    files.iter().fold(Reading::new(opts.columns), |reading, file| reading.read(file, opts, progress)).finish()
}

/// `files` cut into runs for `threads` workers: about four runs a worker, each of at least one file.
fn runs(files: &[InputFile], threads: usize) -> impl Iterator<Item = &[InputFile]> {
    let total: u64 = files.iter().map(estimated_decoded_bytes).sum();
    let share = (total / (4 * threads.max(1) as u64)).max(1);
    batches(files, share, usize::MAX, estimated_decoded_bytes)
}

/// The frame (rows in input order) and the accounting of `files`, from the pieces that read them,
/// in order.
fn assemble(files: &[InputFile], pieces: Vec<Piece>) -> Result<(DataFrame, ReadStats)> {
    let mut stats = ReadStats::default();
    let mut frames: Vec<DataFrame> = Vec::with_capacity(pieces.len());
    let outcomes = pieces.into_iter().flat_map(|piece| {
        stats.bytes_decoded += piece.decoded;
        frames.extend(piece.frames);
        piece.outcomes
    });
    let outcomes: Vec<Outcome> = outcomes.collect();
    debug_assert_eq!(outcomes.len(), files.len());
    for (file, outcome) in files.iter().zip(outcomes) {
        let path = crate::fs::display_path(&file.path);
        match outcome {
            Outcome::Read { records, rejected, without_id } => {
                stats.files += 1;
                stats.bytes_read += file.size;
                stats.records += records;
                stats.records_without_event_id += without_id;
                for (why, n) in rejected {
                    stats.records_rejected += n;
                    stats.rejected.push(Rejected { path: path.clone(), records: n, reason: why.reason().into() });
                }
            }
            Outcome::Skipped(reason) => stats.add_skipped(Skipped { path, reason }),
            Outcome::Failed(reason) => stats.add_failed(Skipped { path, reason }),
        }
    }
    Ok((stack(frames)?, stats))
}

/// Read `files` in parallel into one frame (rows in input order) and the accounting.
/// Rayon splits the files among its workers as they come free (each worker's share is a run of
/// consecutive files, and the shares are collected in order).
pub fn read_files(files: &[InputFile], opts: &ReadOptions, progress: &Progress) -> Result<(DataFrame, ReadStats)> {
    let readings: Vec<Reading> = files
        .par_iter()
        .fold(|| Reading::new(opts.columns), |reading, file| reading.read(file, opts, progress))
        .collect();
    let pieces = readings.into_iter().map(Reading::finish).collect::<Result<Vec<Piece>>>()?;
    assemble(files, pieces)
}

/// Which runs the readers of `read_ahead` may take: the next one, while it is under `open`.
struct Window {
    next: usize,
    open: usize,
    stop: bool,
}

/// Read `batches` and hand each to `each` with what reading it came to, in order. On two or more
/// threads, as many readers as threads take the batches' runs of files (`runs`) in order: while
/// `each` works on a batch, the next is read, and then a run per reader of the one after, so that
/// no reader waits at the end of a batch for another's last file; at most two batches and a run per
/// reader are held. With `--threads 1`, read and worked on in turn. Reading stops once `each`
/// returns an error (which is returned); a batch that failed to read is handed to `each` as the
/// error.
pub fn read_ahead<'f>(
    batches: Vec<&'f [InputFile]>,
    opts: &ReadOptions,
    progress: &Progress,
    mut each: impl FnMut(&'f [InputFile], Result<(DataFrame, ReadStats)>) -> Result<()>,
) -> Result<()> {
    let threads = rayon::current_num_threads();
    if threads <= 1 {
        for batch in batches {
            each(batch, read_files(batch, opts, progress))?;
        }
        return Ok(());
    }
    // Every batch's runs, in input order, and the index of each batch's first run (and the end).
    let mut all: Vec<&[InputFile]> = Vec::new();
    let mut starts: Vec<usize> = Vec::with_capacity(batches.len() + 1);
    for files in &batches {
        starts.push(all.len());
        all.extend(runs(files, threads));
    }
    starts.push(all.len());
    // Working on batch `b`: runs up to batch `b + 1`'s end, and a run per reader past it.
    let open = |b: usize| (starts[(b + 2).min(batches.len())] + threads).min(all.len());
    let window = Mutex::new(Window { next: 0, open: starts[1.min(batches.len())] + threads, stop: false });
    let moved = Condvar::new();
    let lock = || window.lock().unwrap_or_else(PoisonError::into_inner);
    let (all, moved, starts, batches) = (&all, &moved, &starts, &batches);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Piece>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            scope.spawn(move || loop {
                let i = {
                    let mut w = lock();
                    while !w.stop && w.next < all.len() && w.next >= w.open {
                        w = moved.wait(w).unwrap_or_else(PoisonError::into_inner);
                    }
                    if w.stop || w.next >= all.len() {
                        return;
                    }
                    w.next += 1;
                    w.next - 1
                };
                // The receiver is gone when `each` stopped: stop.
                if tx.send((i, read_run(all[i], opts, progress))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut consume = move || -> Result<()> {
            let mut arrived: BTreeMap<usize, Result<Piece>> = BTreeMap::new();
            let mut first = 0;
            for (b, &files) in batches.iter().enumerate() {
                let end = starts[b + 1];
                let mut pieces = Vec::with_capacity(end - first);
                let mut failed = None;
                for (i, run) in all.iter().enumerate().take(end).skip(first) {
                    let piece = loop {
                        if let Some(p) = arrived.remove(&i) {
                            break p;
                        }
                        // Only a reader that panicked leaves its run unsent (the scope then panics).
                        let Ok((j, p)) = rx.recv() else {
                            let path = run[0].path.clone();
                            return Err(crate::error::Error::io(path, std::io::Error::other("its reader stopped")));
                        };
                        arrived.insert(j, p);
                    };
                    match piece {
                        Ok(p) => pieces.push(p),
                        Err(e) => failed = failed.or(Some(e)),
                    }
                }
                first = end;
                lock().open = open(b);
                moved.notify_all();
                let read = match failed {
                    Some(e) => Err(e),
                    None => assemble(files, pieces),
                };
                each(files, read)?;
            }
            Ok(())
        };
        let result = consume();
        lock().stop = true;
        moved.notify_all();
        result
    })
}

/// Stack frames of the same schema (an empty list gives the empty events frame).
pub fn stack(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut it = frames.into_iter();
    let Some(mut first) = it.next() else {
        return crate::ingest::frame::empty();
    };
    for f in it {
        first.vstack_mut_owned(f).context("stacking frames")?;
    }
    // No rechunk: Polars works on chunked columns, and a copy of every column costs as much as the
    // frame itself.
    Ok(first)
}

/// What makes two rows one event: the same eventID at the same eventTime (ms), in the same account
/// (`recipientAccountId`, else the caller's) and region. A redelivered record carries all four
/// unchanged; two different events that share an id (AWS's documentation examples reuse
/// `...-EXAMPLE` ids across years) are both kept, and so is a real event that a planted record tries
/// to shadow with its id but another time, account or region. The store's partitions are (account,
/// region, day), so within one partition the id and the time decide ([`EventKey`] there).
pub type EventKey = (String, i64);

/// The identity of an event across partitions: id, account and region in one string (each length-
/// prefixed, so no two different triples give the same text), with the time beside it.
pub fn event_identity(id: &str, account: Option<&str>, region: Option<&str>, time: i64, out: &mut EventKey) {
    use std::fmt::Write;
    out.0.clear();
    let account = account.unwrap_or_default();
    let region = region.unwrap_or_default();
    let _ = write!(out.0, "{}:{id}{}:{account}{region}", id.len(), account.len());
    out.1 = time;
}

/// The account and region of each row as events are identified and partitioned: the recipient
/// account, else the caller's; an empty value is none.
pub fn accounts_and_regions(df: &DataFrame) -> Result<(StringChunked, StringChunked, StringChunked)> {
    use crate::ingest::frame::col_name as c;
    let text =
        |name: &str| -> Result<StringChunked> { Ok(df.column(name).context(name)?.str().context(name)?.clone()) };
    Ok((text(c::RECIPIENT_ACCOUNT_ID)?, text(c::ACCOUNT_ID)?, text(c::AWS_REGION)?))
}

/// `recipient.or(caller)` without empty values, as `accounts_and_regions` defines the account.
pub fn account_of<'a>(recipient: Option<&'a str>, caller: Option<&'a str>) -> Option<&'a str> {
    recipient.or(caller).filter(|s| !s.is_empty())
}

/// Which rows are the first of their event (see `EventKey`), given the keys in `seen` (which gains
/// this frame's): rows without an id are always kept. Returns the mask and the number of repeats.
/// Exact: it compares the ids themselves, not hashes.
pub fn first_occurrences(df: &DataFrame, seen: &mut hashbrown::HashSet<EventKey>) -> Result<(BooleanChunked, u64)> {
    use crate::ingest::frame::col_name as c;
    let ids = df.column(c::EVENT_ID).context("event_id")?;
    let ids = ids.str().context("event_id as text")?;
    let times = df.column(c::EVENT_TIME).context(c::EVENT_TIME)?.cast(&DataType::Int64).context("event_time")?;
    let times = times.i64().context("event_time")?;
    let (recipients, callers, regions) = accounts_and_regions(df)?;
    let mut dupes = 0u64;
    let mut key = (String::new(), 0i64);
    let mut mask = Vec::with_capacity(df.height());
    for (i, (id, t)) in ids.iter().zip(times.iter()).enumerate() {
        let Some(id) = id else {
            mask.push(true);
            continue;
        };
        let account = account_of(recipients.get(i), callers.get(i));
        let region = regions.get(i).filter(|s| !s.is_empty());
        event_identity(id, account, region, t.unwrap_or(i64::MIN), &mut key);
        if seen.contains(&key) {
            dupes += 1;
            mask.push(false);
        } else {
            seen.insert(key.clone());
            mask.push(true);
        }
    }
    Ok((mask.into_iter().collect(), dupes))
}

/// What a file's JSON takes decoded, roughly: gzip inflates CloudTrail about tenfold.
pub fn estimated_decoded_bytes(f: &InputFile) -> u64 {
    if f.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        f.size.saturating_mul(10)
    } else {
        f.size
    }
}

/// Consecutive runs of `files` in order, each of at least one file: a run ends once the `weight` of
/// its files reaches `budget`, or at `max_files` files.
pub fn batches<'a>(
    files: &'a [InputFile],
    budget: u64,
    max_files: usize,
    weight: impl Fn(&InputFile) -> u64 + 'a,
) -> impl Iterator<Item = &'a [InputFile]> + 'a {
    let mut rest = files;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0;
        let mut n = 0;
        while n < rest.len() && n < max_files && (n == 0 || total < budget) {
            total += weight(&rest[n]);
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::frame::col_name as c;

    /// `n` files of a few events each (file `i` holds `i % 4` events; every fifth file is not JSON),
    /// discovered as a command's inputs are.
    fn inputs(dir: &Path, n: usize) -> Vec<InputFile> {
        for i in 0..n {
            let body = if i % 5 == 4 {
                "this is not json".to_string()
            } else {
                let records: Vec<String> = (0..i % 4)
                    .map(|k| {
                        format!(
                            r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:{:02}Z","eventID":"e-{i}-{k}","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333"}}"#,
                            k
                        )
                    })
                    .collect();
                format!(r#"{{"Records":[{}]}}"#, records.join(","))
            };
            std::fs::write(dir.join(format!("f{i:04}.json")), body).unwrap();
        }
        let found = crate::source::discover(&[dir.to_path_buf()], &Default::default()).unwrap();
        assert_eq!(found.files.len(), n);
        found.files
    }

    /// Each batch's rows, by source file, and its accounting.
    fn sources(df: &DataFrame) -> Vec<String> {
        let col = df.column(c::SOURCE_FILE).unwrap().str().unwrap().clone();
        col.iter().map(|s| s.unwrap().to_string()).collect()
    }

    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    }

    #[test]
    fn read_ahead_hands_every_batch_in_order_as_read_files_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = inputs(dir.path(), 120);
        let opts = ReadOptions::default();
        let progress = Progress::new(0, 0, true);
        // Batches of 1 to 7 files.
        let mut cuts = Vec::new();
        let mut rest: &[InputFile] = &files;
        let mut k = 0;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at((k % 7 + 1).min(rest.len()));
            cuts.push(head);
            rest = tail;
            k += 1;
        }
        let read_each = || -> Vec<(Vec<String>, u64, u64, u64)> {
            cuts.iter()
                .map(|b| {
                    let (df, s) = read_files(b, &opts, &progress).unwrap();
                    (sources(&df), s.files, s.files_failed, s.records)
                })
                .collect()
        };
        let expected = on_threads(1, read_each);
        assert_eq!(on_threads(3, read_each), expected, "read_files on 3 threads");
        let (whole, _) = on_threads(3, || read_files(&files, &opts, &progress)).unwrap();
        assert_eq!(sources(&whole), expected.iter().flat_map(|e| e.0.clone()).collect::<Vec<_>>());
        assert!(expected.iter().any(|e| e.2 > 0), "some batch has a failed file");
        for threads in [1, 2, 3] {
            let mut got = Vec::new();
            on_threads(threads, || {
                read_ahead(cuts.clone(), &opts, &progress, |batch, read| {
                    let (df, s) = read?;
                    assert_eq!(s.files + s.files_failed, batch.len() as u64);
                    got.push((sources(&df), s.files, s.files_failed, s.records));
                    Ok(())
                })
            })
            .unwrap();
            assert_eq!(got, expected, "{threads} threads");
        }
    }

    #[test]
    fn read_ahead_stops_at_the_first_error_of_each() {
        let dir = tempfile::tempdir().unwrap();
        let files = inputs(dir.path(), 60);
        let cuts: Vec<&[InputFile]> = files.chunks(3).collect();
        let progress = Progress::new(0, 0, true);
        for threads in [1, 2] {
            let mut calls = 0;
            let result = on_threads(threads, || {
                read_ahead(cuts.clone(), &ReadOptions::default(), &progress, |_, read| {
                    read?;
                    calls += 1;
                    if calls == 4 {
                        return Err(crate::error::Error::Usage("stop here".into()));
                    }
                    Ok(())
                })
            });
            assert!(matches!(result, Err(crate::error::Error::Usage(m)) if m == "stop here"), "{threads} threads");
            assert_eq!(calls, 4, "{threads} threads");
        }
    }
}

#[cfg(test)]
mod windowed_tests {
    use super::*;

    /// Every file of `testdata/` (delivery files gzipped and plain, the other shapes, the malformed
    /// samples), each read a window at a time where it can be, gives the rows and the accounting of
    /// the same files read whole: every file in windows of one record, or those of 2,000 bytes and
    /// more in windows of about 1,000; on one thread and two, and under a cap some files pass.
    #[test]
    fn files_read_in_windows_are_the_files_read_whole() {
        let found = crate::source::discover(&[std::path::PathBuf::from("testdata")], &Default::default()).unwrap();
        assert!(found.files.len() > 100, "{} files", found.files.len());
        let gzipped = found.files.iter().filter(|f| f.path.extension().is_some_and(|e| e == "gz")).count();
        assert!(gzipped >= 5, "{gzipped} gzipped files");
        // The delivery files are read in windows (70 files start as one, 3 of them malformed), the
        // gzipped ones among them; the others (README, golden answers, arrays, JSON Lines) whole.
        let all = ReadOptions { windowed_from: 0, ..ReadOptions::default() };
        let windowed: Vec<&InputFile> =
            found.files.iter().filter(|f| read_windowed(f, &all, &AtomicU64::new(0)).is_some()).collect();
        assert!(windowed.len() >= 60, "{} of {} files in windows", windowed.len(), found.files.len());
        assert!(windowed.iter().any(|f| f.path.extension().is_some_and(|e| e == "gz")));
        for (threads, cap) in [(1, DEFAULT_MAX_FILE_BYTES), (2, DEFAULT_MAX_FILE_BYTES), (2, 20_000)] {
            let read = |windowed_from: u64| {
                let opts = ReadOptions { windowed_from, max_file_bytes: cap, ..ReadOptions::default() };
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (df, stats) = pool.install(|| read_files(&found.files, &opts, &Progress::hidden())).unwrap();
                (df, serde_json::to_value(stats).unwrap())
            };
            let (whole, whole_stats) = read(u64::MAX);
            assert!(whole.height() > 100, "{} rows", whole.height());
            for from in [0, 2_000] {
                let (windowed, windowed_stats) = read(from);
                assert!(
                    windowed.equals_missing(&whole),
                    "threads {threads}, cap {cap}, from {from}: not the same rows"
                );
                assert_eq!(windowed_stats, whole_stats, "threads {threads}, cap {cap}, from {from}");
            }
        }
    }
}
