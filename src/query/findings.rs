//! One findings shape and one engine for `detect` (built-in checks) and `hunt` (Sigma rules).
//!
//! **The shape.** A [`Finding`] is one detector's hit on one event: which detector (a built-in check
//! or a Sigma rule or correlation, an index into the run's [`Detector`] table), the event's time and
//! the fields a responder reads (id, principal, name, source, source IP, error code, account,
//! region), and the call's [`Outcome`]. Both commands produce it and [`frame`] writes it, in the
//! column set of either command ([`Shape`]), so that their rows can be combined.
//!
//! **The engine.** The events are read in any order, a batch at a time as the files are read
//! (`dataset::fold`: never spilled, never sorted). Each batch's single-event checks or rules run
//! there, and the events that hit something become [`HitEvent`]s (the hits of one event, with what
//! the stateful parts need); [`HitRuns`] sorts each batch's into a run, keeps runs in memory up to a
//! budget (a fraction of `--memory-limit`), writes them to temporary files past it, and k-way merges
//! them at the end into time order: (event time, event id with a missing one last, input order). The
//! stateful parts (detect's sequence check, Sigma correlations) run on that merged stream, which is
//! the time-ordered stream of the events that matter to them. Memory: a batch, the budget, one
//! record per run being merged, and the stateful parts' own state; whatever the number of events.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use polars::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::fs::TempDir;
use crate::ingest::frame::col_name as c;

/// What reported a finding: a built-in check, a Sigma rule or a Sigma correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detector {
    /// `check_id` / `rule_id`.
    pub id: String,
    pub title: String,
    /// `severity` / `level`.
    pub level: Option<String>,
    /// A Sigma rule's status.
    pub status: Option<String>,
    /// MITRE ATT&CK techniques, comma-separated.
    pub tags: String,
}

/// How the call went: `succeeded`, `failed`, or `denied` (an authorization failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(b: u8) -> Result<Outcome> {
        Ok(match b {
            0 => Outcome::Succeeded,
            1 => Outcome::Failed,
            2 => Outcome::Denied,
            _ => return Err(corrupt()),
        })
    }
}

/// A call's outcome from its `errorCode`: `succeeded` without one (or an empty one), `denied` for an
/// authorization failure by `iam::errors::classify` (`AccessDenied*`, `*UnauthorizedOperation`,
/// `VpceAccessDenied`, with or without EC2's `Client.`/`Server.` prefix), else `failed`. The one rule
/// for `detect` and `hunt`.
pub fn outcome(error_code: Option<&str>) -> Outcome {
    match error_code.filter(|c| !c.is_empty()) {
        None => Outcome::Succeeded,
        Some(c) if crate::iam::errors::classify(c) == crate::iam::errors::ErrorClass::Denied => Outcome::Denied,
        Some(_) => Outcome::Failed,
    }
}

/// The event fields of a finding, in this order.
pub const EVENT_FIELDS: [&str; 8] =
    [c::EVENT_ID, c::PRINCIPAL, c::EVENT_NAME, c::EVENT_SOURCE, c::SOURCE_IP, c::ERROR_CODE, "account_id", "region"];

/// The frame columns a finding's [`EVENT_FIELDS`] are read from, in their order, the account's
/// two (the recipient account, else the caller's) before the region.
pub const SOURCE_COLUMNS: [&str; 9] = [
    c::EVENT_ID,
    c::PRINCIPAL,
    c::EVENT_NAME,
    c::EVENT_SOURCE,
    c::SOURCE_IP,
    c::ERROR_CODE,
    c::RECIPIENT_ACCOUNT_ID,
    c::ACCOUNT_ID,
    c::AWS_REGION,
];

/// Indices into [`EventFields`].
pub mod field {
    pub const EVENT_ID: usize = 0;
    pub const PRINCIPAL: usize = 1;
    pub const EVENT_NAME: usize = 2;
    pub const EVENT_SOURCE: usize = 3;
    pub const SOURCE_IP: usize = 4;
    pub const ERROR_CODE: usize = 5;
    pub const ACCOUNT_ID: usize = 6;
    pub const REGION: usize = 7;
}

/// The fields of [`EVENT_FIELDS`] of one event, in one allocation: their texts end to end and where
/// each ends. The runs carry one per hit event, hundreds of thousands of them: one allocation each,
/// not eight, and one read from a spilled run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFields {
    text: Box<str>,
    /// Where each field's text ends in `text`.
    ends: [usize; 8],
    /// Bit `i` set: field `i` is missing (null).
    missing: u8,
}

impl EventFields {
    pub fn new(fields: [Option<&str>; 8]) -> EventFields {
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut ends = [0; 8];
        let mut missing = 0;
        for (i, field) in fields.into_iter().enumerate() {
            match field {
                Some(f) => text.push_str(f),
                None => missing |= 1 << i,
            }
            ends[i] = text.len();
        }
        EventFields { text: text.into_boxed_str(), ends, missing }
    }

    /// The fields from a row's cells of [`SOURCE_COLUMNS`], in that order: the account is the
    /// recipient account, else the caller's.
    pub fn from_source(cells: [Option<&str>; 9]) -> EventFields {
        let [id, principal, name, source, ip, error, recipient, account, region] = cells;
        EventFields::new([id, principal, name, source, ip, error, recipient.or(account), region])
    }

    /// Field `i` (see [`field`]).
    pub fn get(&self, i: usize) -> Option<&str> {
        if self.missing & (1 << i) != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..self.ends[i]])
    }

    /// The bytes of the fields' texts.
    fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Each field's length (`u32::MAX` when missing), then the texts.
    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut lens = [0u8; 32];
        for (i, len) in lens.chunks_exact_mut(4).enumerate() {
            let n = match self.get(i) {
                None => u32::MAX,
                Some(f) => u32::try_from(f.len()).ok().filter(|n| *n != u32::MAX).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "a finding's field is over 4 GiB")
                })?,
            };
            len.copy_from_slice(&n.to_le_bytes());
        }
        w.write_all(&lens)?;
        w.write_all(self.text.as_bytes())
    }

    fn read(r: &mut impl Read) -> Result<EventFields> {
        let mut lens = [0u8; 32];
        r.read_exact(&mut lens).map_err(run_io)?;
        let mut ends = [0; 8];
        let mut missing = 0;
        let mut end = 0usize;
        for (i, len) in lens.chunks_exact(4).enumerate() {
            match u32::from_le_bytes(len.try_into().expect("four bytes")) {
                u32::MAX => missing |= 1 << i,
                n => end += n as usize,
            }
            ends[i] = end;
        }
        // Read into unzeroed capacity: a run holds hundreds of thousands of these.
        let mut buf = Vec::with_capacity(end);
        r.by_ref().take(end as u64).read_to_end(&mut buf).map_err(run_io)?;
        if buf.len() != end {
            return Err(corrupt());
        }
        let text = String::from_utf8(buf).map_err(|_| corrupt())?;
        // Each field on its own is text too (a cut inside a character would panic when read).
        if !ends.iter().all(|&end| text.is_char_boundary(end)) {
            return Err(corrupt());
        }
        Ok(EventFields { text: text.into_boxed_str(), ends, missing })
    }
}

/// One finding: a detector's hit on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index into the run's detectors.
    pub detector: u32,
    pub time_ms: i64,
    pub event: EventFields,
    pub outcome: Outcome,
}

impl Finding {
    pub fn field(&self, i: usize) -> Option<&str> {
        self.event.get(i)
    }
}

/// The column set findings are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `detect`: check_id, title, severity, event_time, principal, event_name, source_ip, event_id,
    /// error_code, outcome.
    Detect,
    /// `hunt`: rule_id, rule_title, level, status, tags, event_time, event_id, principal, event_name,
    /// event_source, source_ip, error_code, account_id, region, outcome.
    Hunt,
}

impl Shape {
    /// The columns, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Shape::Detect => &[
                "check_id",
                "title",
                "severity",
                c::EVENT_TIME,
                c::PRINCIPAL,
                c::EVENT_NAME,
                c::SOURCE_IP,
                c::EVENT_ID,
                c::ERROR_CODE,
                "outcome",
            ],
            Shape::Hunt => &[
                "rule_id",
                "rule_title",
                "level",
                "status",
                "tags",
                c::EVENT_TIME,
                c::EVENT_ID,
                c::PRINCIPAL,
                c::EVENT_NAME,
                c::EVENT_SOURCE,
                c::SOURCE_IP,
                c::ERROR_CODE,
                "account_id",
                "region",
                "outcome",
            ],
        }
    }
}

/// The one writer of findings: rows with `shape`'s columns.
pub fn frame(findings: &[Finding], detectors: &[Detector], shape: Shape) -> Result<DataFrame> {
    let det = |f: &Finding| &detectors[f.detector as usize];
    let mut cols = Vec::new();
    for &name in shape.columns() {
        let column = match name {
            "check_id" | "rule_id" => {
                Column::new(name.into(), findings.iter().map(|f| det(f).id.as_str()).collect::<Vec<_>>())
            }
            "title" | "rule_title" => {
                Column::new(name.into(), findings.iter().map(|f| det(f).title.as_str()).collect::<Vec<_>>())
            }
            "severity" | "level" => {
                Column::new(name.into(), findings.iter().map(|f| det(f).level.as_deref()).collect::<Vec<_>>())
            }
            "status" => Column::new(name.into(), findings.iter().map(|f| det(f).status.as_deref()).collect::<Vec<_>>()),
            "tags" => Column::new(name.into(), findings.iter().map(|f| det(f).tags.as_str()).collect::<Vec<_>>()),
            "outcome" => Column::new(name.into(), findings.iter().map(|f| f.outcome.as_str()).collect::<Vec<_>>()),
            c::EVENT_TIME => Series::new(c::EVENT_TIME.into(), findings.iter().map(|f| f.time_ms).collect::<Vec<_>>())
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))
                .context(c::EVENT_TIME)?
                .into(),
            _ => {
                let i = EVENT_FIELDS.iter().position(|n| *n == name).expect("a finding's field");
                Column::new(name.into(), findings.iter().map(|f| f.field(i)).collect::<Vec<_>>())
            }
        };
        cols.push(column);
    }
    DataFrame::new(findings.len(), cols).context("findings")
}

/// An optional string ordered with a missing one after every present one (the events' sort order).
fn cmp_nulls_last(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// An event some detector hit, or that a stateful part must see, as the runs carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitEvent {
    pub time_ms: i64,
    /// The event's place in the input (unique): ties of time and id keep the input order.
    pub seq: u64,
    pub event: EventFields,
    pub outcome: Outcome,
    /// Detectors hit (the command's indices, in the order it wants them reported).
    pub hits: Vec<u32>,
    /// What the command's stateful part needs to know of the event (detect: its sequence role).
    pub mark: u8,
    /// More of the event for the stateful part (hunt: the record as JSON, for correlations).
    pub payload: Option<String>,
}

impl HitEvent {
    /// The position of the event in time order.
    pub fn cmp_key(&self, other: &Self) -> Ordering {
        self.time_ms
            .cmp(&other.time_ms)
            .then_with(|| cmp_nulls_last(self.event.get(0), other.event.get(0)))
            .then_with(|| self.seq.cmp(&other.seq))
    }

    /// About what it takes in memory.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.event.text_len()
            + self.hits.len() * 4
            + self.payload.as_ref().map_or(0, String::len)
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&self.time_ms.to_le_bytes())?;
        w.write_all(&self.seq.to_le_bytes())?;
        self.event.write(w)?;
        w.write_all(&[self.outcome.code(), self.mark])?;
        w.write_all(&(self.hits.len() as u32).to_le_bytes())?;
        for h in &self.hits {
            w.write_all(&h.to_le_bytes())?;
        }
        put_str(w, self.payload.as_deref())
    }

    /// The next record of a run file, `None` at its end.
    fn read(r: &mut impl Read) -> Result<Option<HitEvent>> {
        let mut b8 = [0u8; 8];
        match r.read_exact(&mut b8) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(run_io(e)),
        }
        let time_ms = i64::from_le_bytes(b8);
        r.read_exact(&mut b8).map_err(run_io)?;
        let seq = u64::from_le_bytes(b8);
        let event = EventFields::read(r)?;
        let mut b2 = [0u8; 2];
        r.read_exact(&mut b2).map_err(run_io)?;
        let mut b4 = [0u8; 4];
        r.read_exact(&mut b4).map_err(run_io)?;
        let n = u32::from_le_bytes(b4) as usize;
        let mut hits = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            r.read_exact(&mut b4).map_err(run_io)?;
            hits.push(u32::from_le_bytes(b4));
        }
        let payload = get_str(r)?;
        Ok(Some(HitEvent { time_ms, seq, event, outcome: Outcome::from_code(b2[0])?, hits, mark: b2[1], payload }))
    }
}

fn put_str(w: &mut impl Write, s: Option<&str>) -> std::io::Result<()> {
    match s {
        None => w.write_all(&u32::MAX.to_le_bytes()),
        Some(s) => {
            w.write_all(&(s.len() as u32).to_le_bytes())?;
            w.write_all(s.as_bytes())
        }
    }
}

fn get_str(r: &mut impl Read) -> Result<Option<String>> {
    let mut b4 = [0u8; 4];
    r.read_exact(&mut b4).map_err(run_io)?;
    let n = u32::from_le_bytes(b4);
    if n == u32::MAX {
        return Ok(None);
    }
    // Read into unzeroed capacity: a run holds hundreds of thousands of these.
    let mut buf = Vec::with_capacity(n as usize);
    r.by_ref().take(u64::from(n)).read_to_end(&mut buf).map_err(run_io)?;
    if buf.len() != n as usize {
        return Err(corrupt());
    }
    String::from_utf8(buf).map(Some).map_err(|_| corrupt())
}

fn run_io(e: std::io::Error) -> Error {
    Error::io(std::path::Path::new("(a temporary findings run)"), e)
}

fn corrupt() -> Error {
    run_io(std::io::Error::new(std::io::ErrorKind::InvalidData, "a temporary findings run is corrupt"))
}

/// Runs merged at once; more files than this are first merged into fewer.
const FAN_IN: usize = 64;

/// The hit events of a run, each batch's sorted into a run: held in memory up to a budget, written to
/// temporary files past it, and merged in time order at the end.
///
/// A spill (sorting the runs held, merging them and writing the file) runs on a thread of its own
/// while the next batches are checked: it was a tenth of `detect`'s time on the thread that reads.
/// One spill at a time, and a spill starts at half the budget, so that what is held and what is
/// being written stay within the budget together.
pub struct HitRuns {
    budget: usize,
    held: Vec<Vec<HitEvent>>,
    held_bytes: usize,
    dir: Option<TempDir>,
    files: Vec<PathBuf>,
    /// The spill being written, and the file it writes.
    writing: Option<std::thread::JoinHandle<Result<PathBuf>>>,
    /// Files started (written or being written), for their names.
    started: usize,
    /// Hit events added.
    events: u64,
}

impl HitRuns {
    /// Hit events added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Runs of at most about `budget` bytes in memory.
    pub fn new(budget: u64) -> HitRuns {
        HitRuns {
            budget: usize::try_from(budget).unwrap_or(usize::MAX),
            held: Vec::new(),
            held_bytes: 0,
            dir: None,
            files: Vec::new(),
            writing: None,
            started: 0,
            events: 0,
        }
    }

    /// A memory budget for the runs: a sixteenth of `--memory-limit` (at least 64 KiB).
    pub fn for_limit(memory_limit: u64) -> HitRuns {
        HitRuns::new((memory_limit / 16).max(64 << 10))
    }

    /// Add one batch's hit events (any order; sorted when they are spilled or merged).
    pub fn add(&mut self, run: Vec<HitEvent>) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        self.events += run.len() as u64;
        self.held_bytes += run.iter().map(HitEvent::bytes).sum::<usize>();
        self.held.push(run);
        if self.held_bytes > self.budget / 2 {
            self.spill()?;
        }
        Ok(())
    }

    /// Write the runs held as one sorted file, on a thread of its own (after the previous spill
    /// has ended).
    fn spill(&mut self) -> Result<()> {
        self.wait_for_spill()?;
        let runs = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        let path = self.new_file()?;
        self.writing = Some(std::thread::spawn(move || {
            write_run(&path, Merge::new(sorted(runs))?)?;
            Ok(path)
        }));
        Ok(())
    }

    /// Wait for the spill being written, and keep its file.
    fn wait_for_spill(&mut self) -> Result<()> {
        let Some(writing) = self.writing.take() else { return Ok(()) };
        let path =
            writing.join().unwrap_or_else(|_| Err(run_io(std::io::Error::other("the spill thread panicked"))))?;
        self.files.push(path);
        Ok(())
    }

    fn new_file(&mut self) -> Result<PathBuf> {
        if self.dir.is_none() {
            self.dir = Some(TempDir::new()?);
        }
        let dir = self.dir.as_ref().expect("made above");
        self.started += 1;
        Ok(dir.path().join(format!("run-{}.bin", self.started - 1)))
    }

    /// Every hit event added, in time order.
    pub fn finish(mut self) -> Result<Merged> {
        self.wait_for_spill()?;
        super::spill::memtrace(&format!("{} hit events in {} run files", self.events, self.files.len()));
        // Too many files to hold a reader of each: merge them into fewer first.
        let mut generation = 0;
        while self.files.len() + usize::from(!self.held.is_empty()) > FAN_IN {
            generation += 1;
            let files = std::mem::take(&mut self.files);
            for (n, group) in files.chunks(FAN_IN).enumerate() {
                let sources = group.iter().map(|p| open_run(p)).collect::<Result<Vec<_>>>()?;
                let dir = self.dir.as_ref().expect("files live in the directory");
                let path = dir.path().join(format!("merged-{generation}-{n}.bin"));
                write_run(&path, Merge::new(sources)?)?;
                for p in group {
                    let _ = std::fs::remove_file(p);
                }
                self.files.push(path);
            }
        }
        let mut sources = self.files.iter().map(|p| open_run(p)).collect::<Result<Vec<_>>>()?;
        sources.extend(sorted(std::mem::take(&mut self.held)));
        Ok(Merged { merge: Merge::new(sources)?, _dir: self.dir.take() })
    }
}

impl Drop for HitRuns {
    /// A run that stops early (an error) still waits for its spill, before the files go.
    fn drop(&mut self) {
        if let Some(writing) = self.writing.take() {
            let _ = writing.join();
        }
    }
}

/// Each run sorted, as a source of the merge.
fn sorted(runs: Vec<Vec<HitEvent>>) -> Vec<Source> {
    runs.into_iter()
        .map(|mut run| {
            run.sort_unstable_by(HitEvent::cmp_key);
            Source::Memory(run.into_iter())
        })
        .collect()
}

fn open_run(path: &std::path::Path) -> Result<Source> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(Source::File(BufReader::with_capacity(64 << 10, f)))
}

fn write_run(path: &std::path::Path, merge: Merge) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::with_capacity(256 << 10, f);
    for ev in merge {
        ev?.write(&mut w).map_err(|e| Error::io(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Where a run's records come from.
enum Source {
    Memory(std::vec::IntoIter<HitEvent>),
    File(BufReader<File>),
}

impl Source {
    fn next(&mut self) -> Result<Option<HitEvent>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(r) => HitEvent::read(r),
        }
    }
}

/// A k-way merge of sorted runs: each run's next event is held in `heads`, and `heap` orders the
/// runs by it (a binary min-heap of run indices, so that a step moves indices, not events of a
/// couple hundred bytes: the heap of events was 2.5% of `detect`'s time in moving them).
struct Merge {
    sources: Vec<Source>,
    heads: Vec<Option<HitEvent>>,
    heap: Vec<usize>,
}

impl Merge {
    fn new(mut sources: Vec<Source>) -> Result<Merge> {
        let heads = sources.iter_mut().map(Source::next).collect::<Result<Vec<_>>>()?;
        let heap: Vec<usize> = (0..heads.len()).filter(|&i| heads[i].is_some()).collect();
        let mut merge = Merge { sources, heads, heap };
        for i in (0..merge.heap.len() / 2).rev() {
            merge.sift_down(i);
        }
        Ok(merge)
    }

    /// Run `a`'s head comes before run `b`'s: in time order, ties to the earlier run.
    fn before(&self, a: usize, b: usize) -> bool {
        match (&self.heads[a], &self.heads[b]) {
            (Some(x), Some(y)) => x.cmp_key(y).then(a.cmp(&b)) == Ordering::Less,
            _ => unreachable!("every run in the heap has a head"),
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                return;
            }
            let right = left + 1;
            let child = if right < n && self.before(self.heap[right], self.heap[left]) { right } else { left };
            if !self.before(self.heap[child], self.heap[i]) {
                return;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }
}

impl Iterator for Merge {
    type Item = Result<HitEvent>;
    fn next(&mut self) -> Option<Self::Item> {
        let &top = self.heap.first()?;
        let ev = self.heads[top].take().expect("every run in the heap has a head");
        // A run that ends, or fails, leaves the heap.
        let result = match self.sources[top].next() {
            Ok(Some(next)) => {
                self.heads[top] = Some(next);
                Ok(ev)
            }
            Ok(None) => {
                self.heap.swap_remove(0);
                Ok(ev)
            }
            Err(e) => {
                self.heap.swap_remove(0);
                Err(e)
            }
        };
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        Some(result)
    }
}

/// The hit events in time order (the temporary files are removed when it is dropped).
pub struct Merged {
    merge: Merge,
    _dir: Option<TempDir>,
}

impl Iterator for Merged {
    type Item = Result<HitEvent>;
    fn next(&mut self) -> Option<Self::Item> {
        self.merge.next()
    }
}

/// Findings handed on `ROWS` at a time.
pub const ROWS: usize = 4096;

/// Findings waiting to be written, handed to `emit` as frames of `ROWS`.
pub struct Emitter<'a, E: FnMut(DataFrame) -> Result<()>> {
    detectors: &'a [Detector],
    shape: Shape,
    pending: Vec<Finding>,
    emit: E,
}

impl<'a, E: FnMut(DataFrame) -> Result<()>> Emitter<'a, E> {
    pub fn new(detectors: &'a [Detector], shape: Shape, emit: E) -> Self {
        Emitter { detectors, shape, pending: Vec::new(), emit }
    }

    pub fn push(&mut self, f: Finding) -> Result<()> {
        self.pending.push(f);
        if self.pending.len() >= ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let df = frame(&self.pending, self.detectors, self.shape)?;
        self.pending.clear();
        (self.emit)(df)
    }
}

/// No findings, with `shape`'s columns.
pub fn empty(shape: Shape) -> Result<DataFrame> {
    frame(&[], &[], shape)
}

/// The numbering of events for `HitEvent::seq`: batch, then row.
pub fn seq(batch: u64, row: usize) -> u64 {
    (batch << 32) | row as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(time_ms: i64, id: Option<&str>, seq: u64) -> HitEvent {
        HitEvent {
            time_ms,
            seq,
            event: EventFields::new([id, Some("p"), None, None, None, Some(""), None, Some("é")]),
            outcome: Outcome::Denied,
            hits: vec![3, 1],
            mark: 2,
            payload: Some("{\"a\":1}".into()),
        }
    }

    /// Runs merge into (time, id with a missing one last, input order), whether they stay in memory or
    /// go through files, and through more files than are merged at once.
    #[test]
    fn runs_merge_in_time_order_in_memory_and_spilled() {
        let mut events = Vec::new();
        let mut n = 0u64;
        for t in 0..400i64 {
            for id in [None, Some("b"), Some("a")] {
                n += 1;
                events.push(ev((t * 7919) % 101, id, n * 31 % 1201));
            }
        }
        let mut expected = events.clone();
        expected.sort_by(HitEvent::cmp_key);
        for budget in [u64::MAX, 0] {
            let mut runs = HitRuns::new(budget);
            runs.budget = if budget == 0 { 1 } else { usize::MAX };
            for chunk in events.chunks(7) {
                runs.add(chunk.to_vec()).unwrap();
            }
            if budget == 0 {
                assert!(runs.files.len() > FAN_IN, "{} files", runs.files.len());
            }
            let merged: Vec<HitEvent> = runs.finish().unwrap().collect::<Result<_>>().unwrap();
            assert_eq!(merged, expected, "budget {budget}");
        }
    }

    /// Each field reads back as given, missing, empty or not, through a spilled run's bytes too;
    /// a run cut inside a character is refused, not read.
    #[test]
    fn event_fields_keep_each_field() {
        let given = [Some("e-1"), None, Some(""), Some("Ünïcode ✓"), None, Some("x"), Some(""), None];
        let fields = EventFields::new(given);
        assert_eq!(std::array::from_fn::<_, 8, _>(|i| fields.get(i)), given);
        let mut bytes = Vec::new();
        fields.write(&mut bytes).unwrap();
        assert_eq!(EventFields::read(&mut bytes.as_slice()).unwrap(), fields);
        // The fourth field one byte shorter and the sixth one longer: the same text, cut inside "✓".
        let mut cut = bytes.clone();
        cut[12..16].copy_from_slice(&("Ünïcode ✓".len() as u32 - 1).to_le_bytes());
        cut[20..24].copy_from_slice(&2u32.to_le_bytes());
        assert!(EventFields::read(&mut cut.as_slice()).is_err());
        assert!(EventFields::read(&mut &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_writer_has_each_commands_columns() {
        let detectors = vec![Detector {
            id: "X".into(),
            title: "t".into(),
            level: Some("high".into()),
            status: None,
            tags: "T1".into(),
        }];
        let f = Finding { detector: 0, time_ms: 0, event: ev(0, Some("e"), 0).event, outcome: Outcome::Failed };
        for shape in [Shape::Detect, Shape::Hunt] {
            let df = frame(std::slice::from_ref(&f), &detectors, shape).unwrap();
            let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
            assert_eq!(names, shape.columns());
            assert_eq!(df.column("outcome").unwrap().str().unwrap().get(0), Some("failed"));
            assert_eq!(df.column(c::EVENT_ID).unwrap().str().unwrap().get(0), Some("e"));
        }
    }
}
