//! Finding input files: directories are walked (sorted, so runs are deterministic), CloudTrail's S3 key
//! layout is recognised to skip digest and Insights files and to prune whole files by account, region
//! and date before they are opened, and trailscope stores are recognised by their marker file.

pub mod filter;
pub mod pull;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::special_kind;
use crate::layout::{parse_key, KeyInfo};
use crate::source::filter::Filter;

/// One file to read.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when the platform has none).
    pub mtime_ns: i64,
    pub key: KeyInfo,
}

/// A file that will not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Everything named on the command line, resolved. Every directory entry met ends in exactly one of
/// `files` (to read), `stores`, `skipped` or `failed`, with a reason.
#[derive(Debug, Default)]
pub struct Inputs {
    pub files: Vec<InputFile>,
    pub stores: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
    /// Entries that could not even be looked at (their metadata is unreadable).
    pub failed: Vec<Skipped>,
}

/// Walk the inputs. Order: arguments in the order given, each directory's entries sorted by name.
/// Only regular files are read: a FIFO, a socket or a device (named here or met in a directory, or
/// the target of a symbolic link) is skipped with what it is, never opened (#13: opening a FIFO
/// blocks until a writer comes).
pub fn discover(paths: &[PathBuf], filter: &Filter) -> Result<Inputs> {
    let mut out = Inputs::default();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            out.append(walk(p, filter)?);
        } else if let Some(kind) = special_kind(meta.file_type()) {
            out.skipped.push(skip(p, &format!("{kind}, not a regular file: not read")));
        } else {
            consider_file(p, &meta, filter, &mut out);
        }
    }
    Ok(out)
}

impl Inputs {
    /// Add `other`'s entries after this one's.
    fn append(&mut self, other: Inputs) {
        self.files.extend(other.files);
        self.stores.extend(other.stores);
        self.skipped.extend(other.skipped);
        self.failed.extend(other.failed);
    }
}

/// A directory's inputs, its entries in name order. The entries are looked at in parallel (a
/// day's directory holds hundreds of delivery files, each a metadata call: on 26 k tiny files the
/// walk was a fifth of `activity`'s time, on one core while the other waited) and their inputs
/// put back in that order.
fn walk(dir: &Path, filter: &Filter) -> Result<Inputs> {
    use rayon::prelude::*;
    if crate::layout::is_store(dir) {
        return Ok(Inputs { stores: vec![dir.to_path_buf()], ..Default::default() });
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    entries
        .par_iter()
        .try_fold(Inputs::default, |mut out, entry| visit(entry, filter, &mut out).map(|()| out))
        .try_reduce(Inputs::default, |mut first, then| {
            first.append(then);
            Ok(first)
        })
}

/// One directory entry: its inputs go to `out`.
fn visit(entry: &std::fs::DirEntry, filter: &Filter, out: &mut Inputs) -> Result<()> {
    let path = entry.path();
    // `pull`'s resume state and its partial downloads are not input: counted as skipped (#13).
    let name = entry.file_name();
    let name = name.to_string_lossy();
    if name == crate::layout::STATE_DIR {
        out.skipped.push(skip(&path, "trailscope pull's resume state, not logs"));
        return Ok(());
    }
    if name.ends_with(crate::layout::TMP_SUFFIX) {
        out.skipped.push(skip(&path, "a temporary file of trailscope (partial download or write), not logs"));
        return Ok(());
    }
    let ft = match entry.file_type() {
        Ok(ft) => ft,
        Err(e) => {
            out.failed.push(skip(&path, &format!("cannot read its metadata: {e}")));
            return Ok(());
        }
    };
    if ft.is_symlink() {
        // Follow links to files, not to directories (no cycles, no escaping the tree); a link is
        // judged by its target.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => consider_file(&path, &m, filter, out),
            Ok(m) if m.is_dir() => out.skipped.push(skip(&path, "symbolic link to a directory, not followed")),
            Ok(m) => {
                let kind = special_kind(m.file_type()).unwrap_or("a special file");
                out.skipped.push(skip(&path, &format!("symbolic link to {kind}, not read")));
            }
            Err(e) => out.skipped.push(skip(&path, &format!("broken symbolic link: {e}"))),
        }
    } else if ft.is_dir() {
        out.append(walk(&path, filter)?);
    } else if ft.is_file() {
        match entry.metadata() {
            Ok(meta) => consider_file(&path, &meta, filter, out),
            Err(e) => out.failed.push(skip(&path, &format!("cannot read its metadata: {e}"))),
        }
    } else {
        let kind = special_kind(ft).unwrap_or("a special file");
        out.skipped.push(skip(&path, &format!("{kind}, not a regular file: not read")));
    }
    Ok(())
}

fn skip(path: &Path, reason: &str) -> Skipped {
    Skipped { path: crate::fs::display_path(path), reason: reason.to_string() }
}

fn consider_file(path: &Path, meta: &std::fs::Metadata, filter: &Filter, out: &mut Inputs) {
    // A segment that is not UTF-8 keeps its place (lossily), so the layout is never misread.
    let segments: Vec<std::borrow::Cow<'_, str>> = path.components().map(|c| c.as_os_str().to_string_lossy()).collect();
    let segments: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    if segments.contains(&"CloudTrail-Digest") {
        out.skipped.push(skip(path, "CloudTrail digest file (log file validation), not events"));
        return;
    }
    if segments.contains(&"CloudTrail-Insight") {
        out.skipped.push(skip(path, "CloudTrail Insights file, not API events"));
        return;
    }
    let key = parse_key(&segments);
    if let Some(reason) = filter.prunes_key(&key) {
        out.skipped.push(skip(path, &reason));
        return;
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    out.files.push(InputFile { path: path.to_path_buf(), size: meta.len(), mtime_ns, key });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a directory are looked at in parallel: on any number of threads the walk
    /// finds the same inputs, in name order.
    #[test]
    fn a_walk_finds_the_same_inputs_in_name_order_on_any_number_of_threads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("AWSLogs/111122223333");
        for day in 1..=3 {
            let d = root.join(format!("CloudTrail/us-east-1/2024/05/{day:02}"));
            std::fs::create_dir_all(&d).unwrap();
            for n in 0..40 {
                let name = format!("111122223333_CloudTrail_us-east-1_202405{day:02}T{n:04}Z_x.json.gz");
                std::fs::write(d.join(name), b"x").unwrap();
            }
            std::fs::write(d.join(format!("partial{}", crate::layout::TMP_SUFFIX)), b"").unwrap();
        }
        let digest = root.join("CloudTrail-Digest/us-east-1/2024/05/01");
        std::fs::create_dir_all(&digest).unwrap();
        std::fs::write(digest.join("111122223333_CloudTrail-Digest_us-east-1_x.json.gz"), b"x").unwrap();
        let listed = |inputs: Inputs| {
            let files: Vec<PathBuf> = inputs.files.into_iter().map(|f| f.path).collect();
            let skipped: Vec<String> = inputs.skipped.into_iter().map(|s| s.path).collect();
            (files, skipped)
        };
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            listed(pool.install(|| discover(&[dir.path().to_path_buf()], &Filter::default()).unwrap()))
        };
        let (files, skipped) = on(1);
        assert_eq!((files.len(), skipped.len()), (120, 4));
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted, "name order");
        assert!(
            skipped[3].contains("CloudTrail-Digest") && skipped[0].ends_with(crate::layout::TMP_SUFFIX),
            "{skipped:?}"
        );
        assert_eq!(on(3), (files, skipped));
    }
}
