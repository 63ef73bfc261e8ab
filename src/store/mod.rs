//! The store: events as Parquet in a Hive-style lake, so repeat questions never re-read gzip and other
//! engines (Spark, Trino, Athena, DuckDB) can read the same files.
//!
//! ```text
//! STORE/_trailscope/store.json                      marker: format and schema version
//! STORE/_trailscope/manifest/<batch>.json           one per committed batch: inputs and parts
//! STORE/_trailscope/tmp/<run>.lock, <run>/          a running writer's lock and staged parts
//! STORE/events/account=<id>/region=<r>/date=<YYYY-MM-DD>/part-<batch>-<n>.parquet
//! ```
//!
//! A batch stages its Parquet parts under `_trailscope/tmp/<run>/`, moves them into `events/`, then
//! commits by writing its manifest (temp + rename). Readers only see parts named in a manifest, so a
//! crash mid-batch leaves the store as it was, and the next writer removes what the crash left (#13).
//! Writers never share a file, so separate processes may ingest disjoint inputs into one store.

pub mod dedup;
pub mod s3;
pub mod write;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, PolarsContext, Result};
use crate::ingest::frame::{col_name as c, SCHEMA_VERSION};
use crate::layout::{is_store, STORE_MARKER, STORE_META_DIR};
use crate::source::filter::Filter;
use crate::source::InputFile;

const MANIFEST_DIR: &str = "manifest";
const EVENTS_DIR: &str = "events";
/// Hive's name for a null partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Serialize, Deserialize)]
struct Marker {
    format: String,
    schema_version: u32,
}

/// One input file as recorded in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputRecord {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
}

/// One Parquet file of the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    /// Relative to the store root, `/`-separated.
    pub path: String,
    pub rows: u64,
    pub account: String,
    pub region: String,
    pub date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub batch: String,
    pub created: String,
    pub inputs: Vec<InputRecord>,
    pub parts: Vec<Part>,
    /// Parts this manifest replaces (written by `compact`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
    /// For a compaction: which ingest batch the rows of each input file came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<RowSource>,
}

/// The rows of `path` in a compacted part are those of ingest batch `batch`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowSource {
    pub path: String,
    pub batch: String,
}

/// What `compact` did.
#[derive(Debug, Default, Serialize)]
pub struct CompactStats {
    pub partitions_compacted: u64,
    pub parts_before: u64,
    pub parts_after: u64,
    pub rows: u64,
    pub rows_dropped_superseded: u64,
    /// Repeats of an event (eventID and time) that concurrent writers both wrote (#13).
    pub duplicates_dropped: u64,
    pub orphans_removed: u64,
}

/// A part readers see: its rows, less those of the `superseded` input files (re-ingested later),
/// and the writer that wrote it (one `scan --store` or `compact` process, see [`run_of`]).
struct Live<'a> {
    part: &'a Part,
    superseded: Vec<&'a str>,
    run: &'a str,
}

/// The writer (process run) of a batch: `<start>-<pid>` of `<start>-<pid>-<n>`; a compaction's
/// batch, `<start>-<pid>-compact`, is a writer of its own.
fn run_of(batch: &str) -> &str {
    if batch.ends_with("-compact") {
        return batch;
    }
    batch.rsplit_once('-').map_or(batch, |(run, _)| run)
}

/// The partitions whose live parts come from more than one writer. One writer never writes an
/// event twice, and a writer that starts after another has committed reads that one's keys first;
/// but two writers at once may both write an event the other is writing (#13). Such partitions are
/// de-duplicated when read, and `compact` rewrites them duplicate-free.
fn shared_partitions<'a>(parts: &[Live<'a>]) -> hashbrown::HashSet<(&'a str, &'a str, &'a str)> {
    let mut runs: hashbrown::HashMap<(&str, &str, &str), &str> = hashbrown::HashMap::new();
    let mut shared = hashbrown::HashSet::new();
    for l in parts {
        let key = (l.part.account.as_str(), l.part.region.as_str(), l.part.date.as_str());
        if *runs.entry(key).or_insert(l.run) != l.run {
            shared.insert(key);
        }
    }
    shared
}

/// The first row of each event (the same eventID at the same eventTime in the same account and
/// region), in order; rows without an eventID are all kept (see `pipeline::EventKey`).
fn first_of_each_event(lf: LazyFrame) -> LazyFrame {
    const ROW: &str = "__trailscope_row";
    const SOLO: &str = "__trailscope_solo";
    lf.with_row_index(ROW, None)
        .with_column(when(col(c::EVENT_ID).is_null()).then(col(ROW)).otherwise(lit(NULL)).alias(SOLO))
        .unique_stable_generic(
            Some(vec![col(c::EVENT_ID), col(c::EVENT_TIME), partition_account(), partition_region(), col(SOLO)]),
            UniqueKeepStrategy::First,
        )
        .drop(cols([ROW, SOLO]))
}

/// An open store.
pub struct Store {
    root: PathBuf,
    manifests: Vec<Manifest>,
    /// This process's claim as a writer, made on its first write.
    writer: Option<Writer>,
}

/// Where writers stage their parts: `_trailscope/tmp/<run>/`, owned while `_trailscope/tmp/<run>.lock`
/// is locked (an advisory lock, released by the kernel when the process dies, `kill -9` included).
const TMP_DIR: &str = "tmp";

/// A running writer: its staging folder and the lock that says it is alive. Parts are written to
/// the staging folder (never under `events/`, where other engines look), listed in an intent file,
/// renamed into `events/` and then committed by the manifest; the intent goes after the commit.
/// The next writer (or `compact`) rolls back what a dead writer left (#13).
struct Writer {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: fs::File,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.lock_path);
    }
}

fn store_err(root: &Path, reason: impl Into<String>) -> Error {
    Error::Store { path: root.to_path_buf(), reason: reason.into() }
}

/// Replace `path` atomically (see [`crate::fs::write_atomic`]).
fn write_atomic(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<fs::File>) -> Result<()>) -> Result<()> {
    crate::fs::write_atomic(path, write, |p, e| Error::io(p, e))
}

/// Escape a partition value the way Hive does (`%XX` for anything outside a safe set).
pub fn hive_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        return NULL_PARTITION.to_string();
    }
    out
}

impl Store {
    /// Open an existing store.
    pub fn open(root: &Path) -> Result<Store> {
        let marker_path = root.join(STORE_META_DIR).join(STORE_MARKER);
        let text = fs::read_to_string(&marker_path).map_err(|e| Error::io(&marker_path, e))?;
        let marker: Marker =
            serde_json::from_str(&text).map_err(|e| store_err(root, format!("bad {STORE_MARKER}: {e}")))?;
        if marker.schema_version != SCHEMA_VERSION {
            return Err(store_err(
                root,
                format!("schema version {} (this trailscope writes {SCHEMA_VERSION})", marker.schema_version),
            ));
        }
        let mdir = root.join(STORE_META_DIR).join(MANIFEST_DIR);
        let mut names: Vec<PathBuf> = match fs::read_dir(&mdir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&mdir, e)),
        };
        names.sort();
        let mut manifests = Vec::with_capacity(names.len());
        for p in names {
            let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            let m: Manifest = serde_json::from_str(&text)
                .map_err(|e| store_err(root, format!("bad manifest {}: {e}", crate::fs::display_path(&p))))?;
            manifests.push(m);
        }
        Ok(Store { root: root.to_path_buf(), manifests, writer: None })
    }

    /// Open, creating an empty store if `root` has none (refusing a non-empty directory that is not
    /// a store, so that a typo never scatters files into someone's folder).
    pub fn create_or_open(root: &Path) -> Result<Store> {
        if is_store(root) {
            return Store::open(root);
        }
        if root.exists() {
            // Another writer may be creating the same store right now: its `_trailscope` is fine.
            let foreign = fs::read_dir(root)
                .map_err(|e| Error::io(root, e))?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name() != STORE_META_DIR && e.file_name() != EVENTS_DIR);
            if foreign {
                return Err(store_err(root, "exists, is not empty and is not a trailscope store"));
            }
        }
        let marker = Marker { format: "trailscope-store".into(), schema_version: SCHEMA_VERSION };
        write_atomic(&root.join(STORE_META_DIR).join(STORE_MARKER), |f| {
            serde_json::to_writer_pretty(f, &marker).map_err(|e| store_err(root, e.to_string()))
        })?;
        Store::open(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest recorded (size, mtime) of every input path.
    pub fn known_inputs(&self) -> hashbrown::HashMap<&str, &InputRecord> {
        let mut m = hashbrown::HashMap::new();
        for man in &self.manifests {
            for i in &man.inputs {
                m.insert(i.path.as_str(), i);
            }
        }
        m
    }

    pub fn is_unchanged(&self, known: &hashbrown::HashMap<&str, &InputRecord>, f: &InputFile) -> bool {
        known
            .get(crate::layout::input_key(&f.path).as_str())
            .is_some_and(|r| r.size == f.size && r.mtime_ns == f.mtime_ns)
    }

    /// Every part (after the filter's partition pruning), with the input files whose rows in it were
    /// superseded by a later ingest of a changed file.
    fn live_parts(&self, filter: &Filter) -> Vec<Live<'_>> {
        let latest: hashbrown::HashMap<&str, &str> = self
            .manifests
            .iter()
            .flat_map(|m| m.inputs.iter().map(move |i| (i.path.as_str(), m.batch.as_str())))
            .collect();
        let replaced: hashbrown::HashSet<&str> =
            self.manifests.iter().flat_map(|m| m.replaces.iter().map(String::as_str)).collect();
        let mut out = Vec::new();
        for m in &self.manifests {
            // Where each input's rows in this manifest's parts came from.
            let sources: Vec<(&str, &str)> = if m.sources.is_empty() {
                m.inputs.iter().map(|i| (i.path.as_str(), m.batch.as_str())).collect()
            } else {
                m.sources.iter().map(|s| (s.path.as_str(), s.batch.as_str())).collect()
            };
            let superseded: Vec<&str> = sources
                .into_iter()
                .filter(|(p, batch)| latest.get(p).is_some_and(|b| b != batch))
                .map(|(p, _)| p)
                .collect();
            for p in m.parts.iter().filter(|p| !replaced.contains(p.path.as_str())) {
                let date = NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").ok();
                if !filter.prunes_partition(&p.account, &p.region, date) {
                    out.push(Live { part: p, superseded: superseded.clone(), run: run_of(&m.batch) });
                }
            }
        }
        out
    }

    /// Every part, with the filter's partition pruning applied.
    pub fn parts(&self, filter: &Filter) -> Vec<&Part> {
        self.live_parts(filter).into_iter().map(|l| l.part).collect()
    }

    fn scan_args() -> ScanArgsParquet {
        ScanArgsParquet {
            hive_options: HiveOptions { enabled: Some(false), ..Default::default() },
            ..Default::default()
        }
    }

    /// The events of the store (after partition pruning) as a lazy scan. Rows of a file that was
    /// re-ingested after it changed come only from its latest ingest; a partition written by more
    /// than one writer is de-duplicated (see [`shared_partitions`]).
    pub fn scan(&self, filter: &Filter) -> Result<LazyFrame> {
        self.scan_parts(self.live_parts(filter))
    }

    /// One live part as a lazy scan, less its superseded rows.
    fn scan_live(&self, l: &Live<'_>) -> Result<LazyFrame> {
        let path = PlRefPath::new(self.root.join(&l.part.path).to_string_lossy().as_ref());
        let lf = LazyFrame::scan_parquet(path, Self::scan_args()).context("scanning the store")?;
        if l.superseded.is_empty() {
            return Ok(lf);
        }
        let old = Series::new("superseded".into(), l.superseded.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        Ok(lf.filter(col(c::SOURCE_FILE).is_in(lit(old).implode(false), false).not()))
    }

    fn scan_parts(&self, parts: Vec<Live<'_>>) -> Result<LazyFrame> {
        let path_of = |p: &Part| PlRefPath::new(self.root.join(&p.path).to_string_lossy().as_ref());
        let shared = shared_partitions(&parts);
        let mut clean = Vec::new();
        let mut scans = Vec::new();
        let mut by_partition: BTreeMap<(&str, &str, &str), Vec<LazyFrame>> = BTreeMap::new();
        for l in &parts {
            let key = (l.part.account.as_str(), l.part.region.as_str(), l.part.date.as_str());
            if shared.contains(&key) {
                by_partition.entry(key).or_default().push(self.scan_live(l)?);
            } else if l.superseded.is_empty() {
                clean.push(path_of(l.part));
            } else {
                scans.push(self.scan_live(l)?);
            }
        }
        if !clean.is_empty() {
            scans.insert(
                0,
                LazyFrame::scan_parquet_files(clean.into(), Self::scan_args()).context("scanning the store")?,
            );
        }
        for (_, lfs) in by_partition {
            let lf = concat(lfs, UnionArgs::default()).context("scanning the store")?;
            scans.push(first_of_each_event(lf));
        }
        match scans.len() {
            0 => Ok(crate::ingest::frame::empty()?.lazy()),
            1 => Ok(scans.pop().expect("one scan")),
            _ => concat(scans, UnionArgs::default()).context("scanning the store"),
        }
    }

    /// The events of one (account, region, date) partition by key (eventID and time, for
    /// de-duplication across runs), leaving out the rows of `reingesting` (input paths about to be
    /// read again because they changed). A redelivered event has the same time, account and region,
    /// so it lands in the same partition: one partition's keys are all a new row can repeat.
    pub fn partition_event_keys(
        &self,
        key: &PartitionKey,
        reingesting: &hashbrown::HashSet<String>,
    ) -> Result<dedup::Keys> {
        let parts: Vec<_> = self
            .live_parts(&Filter::default())
            .into_iter()
            .filter(|l| (&l.part.account, &l.part.region, &l.part.date) == (&key.0, &key.1, &key.2))
            .collect();
        if parts.is_empty() {
            return Ok(Default::default());
        }
        let old = Series::new("reingesting".into(), reingesting.iter().cloned().collect::<Vec<_>>());
        let df = self
            .scan_parts(parts)?
            .filter(col(c::SOURCE_FILE).is_in(lit(old).implode(false), false).not())
            .select([col(c::EVENT_ID), col(c::EVENT_TIME).cast(DataType::Int64)])
            .filter(col(c::EVENT_ID).is_not_null())
            .collect()
            .context("reading event ids from the store")?;
        let ids = df.column(c::EVENT_ID).context("event_id")?.str().context("event_id")?.clone();
        let times = df.column(c::EVENT_TIME).context("event_time")?.i64().context("event_time")?.clone();
        let mut keys = dedup::Keys::new();
        let mut scratch = (String::new(), 0);
        for (id, t) in ids.iter().zip(times.iter()) {
            if let Some(id) = id {
                keys.insert(id, t.unwrap_or(i64::MIN), &mut scratch);
            }
        }
        Ok(keys)
    }

    /// Write one batch: partition `df`, write the parts, then commit the manifest.
    pub fn write_batch(&mut self, batch: &str, df: &DataFrame, inputs: Vec<InputRecord>) -> Result<Manifest> {
        let mut parts = Vec::new();
        for (seq, (key, idx)) in partition_rows(df)?.into_iter().enumerate() {
            let (account, region, date) = key;
            let rel = format!(
                "{EVENTS_DIR}/account={}/region={}/date={}/part-{batch}-{seq:04}.parquet",
                hive_escape(&account),
                hive_escape(&region),
                date
            );
            let mut part_df = rows_of(df, idx)?;
            let rows = part_df.height() as u64;
            self.stage(batch, seq, &mut part_df)?;
            parts.push(Part { path: rel, rows, account, region, date });
        }
        self.publish(batch, &parts)?;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            batch: batch.to_string(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            inputs,
            parts,
            replaces: Vec::new(),
            sources: Vec::new(),
        };
        self.commit(manifest)
    }

    /// Claim the store as writer `run` (see [`Writer`]) and clean what dead writers left; done by a
    /// `scan --store` run as it starts, and otherwise on a first write.
    pub fn start_writing(&mut self, run: &str) -> Result<()> {
        self.writer_dir(run).map(|_| ())
    }

    /// This process's staging folder, claimed (and dead writers' leftovers cleaned) on first use.
    fn writer_dir(&mut self, run: &str) -> Result<PathBuf> {
        if let Some(w) = &self.writer {
            return Ok(w.dir.clone());
        }
        let tmp = self.root.join(STORE_META_DIR).join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let lock_path = tmp.join(format!("{run}.lock"));
        let lock = fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let dir = tmp.join(run);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        self.writer = Some(Writer { dir: dir.clone(), lock_path, _lock: lock });
        self.recover()?;
        Ok(dir)
    }

    /// Write one part of `batch` into the staging folder.
    fn stage(&mut self, batch: &str, seq: usize, df: &mut DataFrame) -> Result<()> {
        let path = self.writer_dir(run_of(batch))?.join(format!("{batch}-{seq:04}.parquet"));
        write_atomic(&path, |f| {
            ParquetWriter::new(f)
                .with_compression(ParquetCompression::Zstd(None))
                .with_statistics(StatisticsOptions::full())
                .finish(df)
                .map(|_| ())
                .context("writing parquet")
        })
    }

    /// Move the staged parts of `batch` to their places under `events/`, having first listed them in
    /// an intent file, so that a crash before the commit leaves nothing a later writer cannot remove.
    fn publish(&mut self, batch: &str, parts: &[Part]) -> Result<()> {
        let dir = self.writer_dir(run_of(batch))?;
        let names: Vec<&str> = parts.iter().map(|p| p.path.as_str()).collect();
        write_atomic(&dir.join(format!("pending-{batch}.json")), |f| {
            serde_json::to_writer(f, &names).map_err(|e| store_err(&self.root, e.to_string()))
        })?;
        for (seq, p) in parts.iter().enumerate() {
            let from = dir.join(format!("{batch}-{seq:04}.parquet"));
            let to = self.root.join(&p.path);
            let parent = to.parent().expect("a part has a folder");
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        Ok(())
    }

    /// Write a manifest (the commit point of a batch or a compaction).
    fn commit(&mut self, manifest: Manifest) -> Result<Manifest> {
        let mpath = self.root.join(STORE_META_DIR).join(MANIFEST_DIR).join(format!("{}.json", manifest.batch));
        write_atomic(&mpath, |f| {
            serde_json::to_writer_pretty(f, &manifest).map_err(|e| store_err(&self.root, e.to_string()))
        })?;
        if let Some(w) = &self.writer {
            let _ = fs::remove_file(w.dir.join(format!("pending-{}.json", manifest.batch)));
        }
        self.manifests.push(manifest.clone());
        Ok(manifest)
    }

    /// Remove what writers that are no longer running left: their staging folders, and Parquet files
    /// under `events/` that no manifest names and no live writer is about to commit (a crash between
    /// moving parts into place and committing them, or a stray file). Returns the files removed.
    /// The order makes it safe beside live writers: the files are listed first; a live writer's
    /// part listed then was in its intent before, and an intent that is gone by the time it is read
    /// was committed, so the manifests (read last) name it.
    fn recover(&self) -> Result<u64> {
        let mut files = Vec::new();
        collect_parquet(&self.root.join(EVENTS_DIR), &mut files);
        let tmp = self.root.join(STORE_META_DIR).join(TMP_DIR);
        let mut protected: hashbrown::HashSet<PathBuf> = hashbrown::HashSet::new();
        let mut dead = Vec::new();
        let mut removed = 0;
        for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let path = e.path();
            let Some(run) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".lock")) else {
                // A staging folder without its lock file: its writer is gone.
                if path.is_dir() && !tmp.join(format!("{}.lock", e.file_name().to_string_lossy())).exists() {
                    dead.push(path);
                }
                continue;
            };
            let dir = tmp.join(run);
            let alive = match fs::OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f.try_lock().is_err(),
                Err(_) => false,
            };
            if alive {
                for intent in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let Ok(text) = fs::read_to_string(intent.path()) else { continue };
                    if let Ok(names) = serde_json::from_str::<Vec<String>>(&text) {
                        protected.extend(names.iter().map(|n| self.root.join(n)));
                    }
                }
            } else {
                dead.push(dir);
                dead.push(path);
            }
        }
        let named = self.named_parts()?;
        for f in files {
            if !named.contains(&f) && !protected.contains(&f) && fs::remove_file(&f).is_ok() {
                removed += 1;
            }
        }
        for d in dead {
            let _ = if d.is_dir() { fs::remove_dir_all(&d) } else { fs::remove_file(&d) };
        }
        Ok(removed)
    }

    /// Every part any manifest on disk names now (live or replaced).
    fn named_parts(&self) -> Result<hashbrown::HashSet<PathBuf>> {
        let reread = Store::open(&self.root)?;
        Ok(reread.manifests.iter().flat_map(|m| m.parts.iter().map(|p| self.root.join(&p.path))).collect())
    }

    /// Merge the live parts of each partition that has at least `min_files` of them (or rows of
    /// files re-ingested since) into one part, sorted by event time. The new parts and a manifest that
    /// replaces the old ones are written first; the old files are deleted after that commit, so a
    /// reader sees either the old parts or the new ones. Parquet files no manifest names and no live
    /// writer is committing (left by a crashed writer) are removed, see [`Store::recover`].
    pub fn compact(&mut self, min_files: usize) -> Result<CompactStats> {
        let mut stats = CompactStats::default();
        let latest: hashbrown::HashMap<String, String> = self
            .manifests
            .iter()
            .flat_map(|m| m.inputs.iter().map(move |i| (i.path.clone(), m.batch.clone())))
            .collect();
        let mut groups: BTreeMap<PartitionKey, Vec<(Part, Vec<String>, String)>> = BTreeMap::new();
        for l in self.live_parts(&Filter::default()) {
            let p = l.part;
            groups.entry((p.account.clone(), p.region.clone(), p.date.clone())).or_default().push((
                p.clone(),
                l.superseded.iter().map(|s| s.to_string()).collect(),
                l.run.to_string(),
            ));
        }
        stats.parts_before = groups.values().map(|g| g.len() as u64).sum();
        let batch = format!("{}-{}-compact", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), std::process::id());
        let (mut parts, mut replaces, mut sources) = (Vec::new(), Vec::new(), Vec::new());
        for ((account, region, date), group) in groups {
            let stale = group.iter().any(|(_, s, _)| !s.is_empty());
            // Parts of several writers may repeat events: always merged, so the files themselves
            // (read by other engines too) hold each event once.
            let shared = group.iter().any(|(_, _, run)| *run != group[0].2);
            if group.len() < min_files.max(2) && !stale && !shared {
                stats.parts_after += group.len() as u64;
                continue;
            }
            let mut frames = Vec::new();
            for (p, superseded, _) in &group {
                let path = PlRefPath::new(self.root.join(&p.path).to_string_lossy().as_ref());
                let mut lf = LazyFrame::scan_parquet(path, Self::scan_args()).context("reading a part")?;
                if !superseded.is_empty() {
                    let old = Series::new("superseded".into(), superseded.clone());
                    lf = lf.filter(col(c::SOURCE_FILE).is_in(lit(old).implode(false), false).not());
                }
                frames.push(lf);
                replaces.push(p.path.clone());
            }
            let before: u64 = group.iter().map(|(p, _, _)| p.rows).sum();
            let merged =
                concat(frames, UnionArgs::default()).context("merging parts")?.collect().context("merging parts")?;
            let current = merged.height() as u64;
            let mut df = first_of_each_event(merged.lazy())
                .sort(
                    [c::EVENT_TIME, c::EVENT_ID],
                    SortMultipleOptions::default().with_nulls_last(true).with_maintain_order(true),
                )
                .collect()
                .context("merging parts")?;
            let rows = df.height() as u64;
            stats.rows += rows;
            stats.rows_dropped_superseded += before.saturating_sub(current);
            stats.duplicates_dropped += current - rows;
            // Record where the merged rows of each input came from (its latest batch).
            let files = df.column(c::SOURCE_FILE).context("source_file")?.str().context("source_file")?.clone();
            let mut seen = hashbrown::HashSet::new();
            for f in files.iter().flatten() {
                if seen.insert(f.to_string()) {
                    if let Some(b) = latest.get(f) {
                        sources.push(RowSource { path: f.to_string(), batch: b.clone() });
                    }
                }
            }
            let rel = format!(
                "{EVENTS_DIR}/account={}/region={}/date={}/part-{batch}-{:04}.parquet",
                hive_escape(&account),
                hive_escape(&region),
                date,
                parts.len()
            );
            self.stage(&batch, parts.len(), &mut df)?;
            parts.push(Part { path: rel, rows, account, region, date });
            stats.partitions_compacted += 1;
            stats.parts_after += 1;
        }
        if !parts.is_empty() || !replaces.is_empty() {
            self.publish(&batch, &parts)?;
            let removed = replaces.clone();
            self.commit(Manifest {
                schema_version: SCHEMA_VERSION,
                batch,
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                inputs: Vec::new(),
                parts,
                replaces,
                sources,
            })?;
            for r in removed {
                let _ = fs::remove_file(self.root.join(r));
            }
        }
        stats.orphans_removed = self.recover()? + self.remove_stale_temporaries();
        Ok(stats)
    }

    /// Delete hidden temporary files (`*.trailscope-tmp`) under `events/` older than an hour: left
    /// by earlier versions, which wrote parts in place (a running writer's are younger).
    fn remove_stale_temporaries(&self) -> u64 {
        let mut files = Vec::new();
        collect_files(&self.root.join(EVENTS_DIR), crate::layout::TMP_SUFFIX, &mut files);
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let old = |f: &PathBuf| fs::metadata(f).and_then(|m| m.modified()).is_ok_and(|t| t < hour_ago);
        files.iter().filter(|f| old(f) && fs::remove_file(f).is_ok()).count() as u64
    }
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) {
    collect_files(dir, ".parquet", out)
}

/// Files under `dir` whose name ends with `suffix`.
fn collect_files(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_files(&p, suffix, out);
        } else if e.file_name().as_encoded_bytes().ends_with(suffix.as_bytes()) {
            out.push(p);
        }
    }
}

/// Runs of consecutive rows up to which a partition is sliced rather than gathered (`rows_of`).
const MAX_SLICED_RUNS: usize = 16;

/// The rows `idx` (ascending) of `df`. Delivery files are per account and region and come in path
/// order, so a partition's rows are mostly one run of consecutive rows: those are slices of `df`,
/// which copy nothing (a gather copied every string, blobs included: 12.5% of ingest's CPU time).
/// Rows scattered over more than `MAX_SLICED_RUNS` runs are gathered.
fn rows_of(df: &DataFrame, idx: Vec<IdxSize>) -> Result<DataFrame> {
    let mut runs: Vec<(IdxSize, IdxSize)> = Vec::new();
    for &i in &idx {
        if let Some((_, len)) = runs.last_mut().filter(|(start, len)| *start + *len == i) {
            *len += 1;
        } else if runs.len() == MAX_SLICED_RUNS {
            let idx = IdxCa::from_vec("idx".into(), idx);
            return df.take(&idx).context("selecting a partition");
        } else {
            runs.push((i, 1));
        }
    }
    let mut slices = runs.into_iter().map(|(start, len)| df.slice(start as i64, len as usize));
    let mut out = slices.next().unwrap_or_else(|| df.clear());
    for s in slices {
        out.vstack_mut_owned(s).context("selecting a partition")?;
    }
    Ok(out)
}

/// (account, region, UTC date) of a part, as its folder names them before escaping.
pub type PartitionKey = (String, String, String);

/// The account an event is identified and partitioned by, as an expression (see
/// `pipeline::account_of`): the recipient account, else the caller's; empty is none.
fn partition_account() -> Expr {
    let account = when(col(c::RECIPIENT_ACCOUNT_ID).is_not_null())
        .then(col(c::RECIPIENT_ACCOUNT_ID))
        .otherwise(col(c::ACCOUNT_ID));
    when(account.clone().eq(lit(""))).then(lit(NULL).cast(DataType::String)).otherwise(account)
}

/// The region an event is identified and partitioned by: `awsRegion`, empty is none.
fn partition_region() -> Expr {
    when(col(c::AWS_REGION).eq(lit(""))).then(lit(NULL).cast(DataType::String)).otherwise(col(c::AWS_REGION))
}

/// Row indices of `df` grouped by (account, region, UTC date), in first-seen order.
pub fn partition_rows(df: &DataFrame) -> Result<Vec<(PartitionKey, Vec<IdxSize>)>> {
    let (recipient, caller, region) = crate::ingest::pipeline::accounts_and_regions(df)?;
    let times = df.column(c::EVENT_TIME).context("event_time")?.cast(&DataType::Int64).context("event_time")?;
    let times = times.i64().context("event_time")?.clone();
    // Grouped by borrowed text and the day's number, in first-seen order (so part numbering is
    // deterministic); each group's key is written out once.
    const DAY_MS: i64 = 86_400_000;
    type Borrowed<'a> = (&'a str, &'a str, Option<i64>);
    let mut index: hashbrown::HashMap<Borrowed, usize> = hashbrown::HashMap::new();
    let mut groups: Vec<(Borrowed, Vec<IdxSize>)> = Vec::new();
    for (i, (((r, a), g), t)) in recipient.iter().zip(caller.iter()).zip(region.iter()).zip(times.iter()).enumerate() {
        let account = crate::ingest::pipeline::account_of(r, a).unwrap_or(NULL_PARTITION);
        let region = g.filter(|s| !s.is_empty()).unwrap_or(NULL_PARTITION);
        let key = (account, region, t.map(|t| t.div_euclid(DAY_MS)));
        match index.get(&key) {
            Some(&n) => groups[n].1.push(i as IdxSize),
            None => {
                index.insert(key, groups.len());
                groups.push((key, vec![i as IdxSize]));
            }
        }
    }
    let mut out: Vec<(PartitionKey, Vec<IdxSize>)> = Vec::with_capacity(groups.len());
    let mut named: hashbrown::HashMap<PartitionKey, usize> = hashbrown::HashMap::new();
    for ((account, region, day), rows) in groups {
        let date = day
            .and_then(|d| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(d.saturating_mul(DAY_MS)))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| NULL_PARTITION.to_string());
        let key = (account.to_string(), region.to_string(), date);
        match named.get(&key) {
            // Days past chrono's range all write as the null partition: one group, rows in order.
            Some(&n) => {
                out[n].1.extend(rows);
                out[n].1.sort_unstable();
            }
            None => {
                named.insert(key.clone(), out.len());
                out.push((key, rows));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_names_its_writer() {
        assert_eq!(run_of("20240305T100000.123Z-4242-00003"), "20240305T100000.123Z-4242");
        assert_eq!(run_of("20240305T100000.123Z-4242-compact"), "20240305T100000.123Z-4242-compact");
    }

    #[test]
    fn a_partition_sliced_or_gathered_has_the_rows_asked_for() {
        let n: IdxSize = 200;
        let a = Column::new("a".into(), (0..n).collect::<Vec<_>>());
        let b = Column::new("b".into(), (0..n).map(|i| format!("value {i}")).collect::<Vec<_>>());
        let one = DataFrame::new(n as usize, vec![a, b]).unwrap();
        // Two chunks, as a batch's frame stacked from its workers' parts.
        let mut df = one.slice(0, 120);
        df.vstack_mut_owned(one.slice(120, 80)).unwrap();
        let cases: Vec<Vec<IdxSize>> = vec![
            (0..n).collect(),
            (5..9).collect(),
            (110..130).collect(),
            vec![0, 1, 2, 50, 51, 199],
            (0..n).step_by(2).collect(),
            (0..MAX_SLICED_RUNS as IdxSize).map(|i| i * 3).collect(),
            vec![],
        ];
        for idx in cases {
            let want = df.take(&IdxCa::from_vec("idx".into(), idx.clone())).unwrap();
            let got = rows_of(&df, idx.clone()).unwrap();
            assert!(got.equals_missing(&want), "rows {idx:?}: {got} against {want}");
        }
    }

    #[test]
    fn hive_escape_keeps_paths_inside_the_store() {
        assert_eq!(hive_escape("123456789012"), "123456789012");
        assert_eq!(hive_escape("us-east-1"), "us-east-1");
        assert_eq!(hive_escape("../etc"), "..%2Fetc");
        assert_eq!(hive_escape(".."), NULL_PARTITION);
        assert_eq!(hive_escape("a b"), "a%20b");
    }
}
