//! Local state: what was written, by key (`DEST/.trailscope-pull/state`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::norm_etag;
use crate::layout::STATE_DIR;

/// The state file in [`STATE_DIR`]: one `<etag>\t<size>\t<key>` line per object, the last line wins.
pub(super) const STATE_FILE: &str = "state";
const STATE_HEADER: &str = "# trailscope pull state v1: <etag>\\t<size>\\t<key>, the last line for a key wins";

pub(super) struct State {
    pub(super) path: PathBuf,
    pub(super) entries: BTreeMap<String, (String, u64)>,
    pub(super) journal: Option<std::fs::File>,
    pub(super) dirty: bool,
}

impl State {
    pub(super) fn load(dest: &Path) -> State {
        let path = dest.join(STATE_DIR).join(STATE_FILE);
        let mut entries = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                // A torn last line (killed mid-write) is ignored, like any malformed one.
                let mut parts = line.splitn(3, '\t');
                let (Some(etag), Some(size), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                if line.starts_with('#') || key.is_empty() {
                    continue;
                }
                if let Ok(size) = size.parse() {
                    entries.insert(key.to_string(), (etag.to_string(), size));
                }
            }
        }
        State { path, entries, journal: None, dirty: false }
    }

    pub(super) fn is_current(&self, key: &str, etag: &str, size: u64) -> bool {
        let etag = norm_etag(etag);
        !etag.is_empty() && self.entries.get(key).is_some_and(|(e, s)| e == etag && *s == size)
    }

    /// Remember an object written; appended at once so a killed run keeps what it finished.
    pub(super) fn record(&mut self, key: &str, etag: &str, size: u64) -> std::io::Result<()> {
        let etag = norm_etag(etag);
        if etag.is_empty() || etag.chars().any(|c| c.is_control()) {
            self.entries.remove(key);
            self.dirty = true;
            return Ok(());
        }
        self.entries.insert(key.to_string(), (etag.to_string(), size));
        self.dirty = true;
        if self.journal.is_none() {
            std::fs::create_dir_all(self.path.parent().expect("state file has a parent"))?;
            let fresh = !self.path.exists();
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            if fresh {
                writeln!(f, "{STATE_HEADER}")?;
            }
            self.journal = Some(f);
        }
        let f = self.journal.as_mut().expect("opened above");
        f.write_all(format!("{etag}\t{size}\t{key}\n").as_bytes())
    }

    /// Rewrite the state file without superseded lines, atomically.
    pub(super) fn compact(&mut self) -> std::io::Result<()> {
        self.journal = None;
        if !self.dirty {
            return Ok(());
        }
        std::fs::create_dir_all(self.path.parent().expect("state file has a parent"))?;
        let mut text = format!("{STATE_HEADER}\n");
        for (key, (etag, size)) in &self.entries {
            text.push_str(&format!("{etag}\t{size}\t{key}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

/// Replace `path` with `bytes` atomically (see [`crate::fs::write_atomic`]).
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fs::write_atomic(path, |f| f.write_all(bytes), |_, e| e)
}
