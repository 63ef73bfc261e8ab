//! Downloading: each object to a temporary name, fsynced, renamed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use indicatif::ProgressBar;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectStore};
use tokio::io::AsyncWriteExt;

use super::config::retry_config;
use super::list::{Backoff, Listed};
use super::state::write_atomically;
use super::{is_digest, sidecar_path, tmp_path};
use crate::error::Result;
use crate::layout::DigestMetadata;

/// Whole-object attempts (each with object_store's own retries inside) before an object is failed.
const FETCH_ATTEMPTS: u32 = 3;

pub(super) struct Fetcher {
    pub(super) store: Arc<AmazonS3>,
    pub(super) dest: PathBuf,
    /// Directories under DEST known to be real directories (not links out of it).
    pub(super) dirs: Mutex<HashSet<PathBuf>>,
    pub(super) bar: ProgressBar,
}

pub(super) struct FetchError {
    pub(super) reason: String,
    pub(super) retry: bool,
}

impl FetchError {
    pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> Self {
        FetchError { reason: format!("{what} {}: {e}", path.display()), retry: false }
    }
}

impl Fetcher {
    /// Create the directories of `dir` below DEST one by one, refusing to go through a symbolic link
    /// or a file, so nothing is written outside DEST whatever the tree already holds.
    pub(super) fn ensure_dir(&self, dir: &Path) -> Result<(), FetchError> {
        if self.dirs.lock().expect("lock").contains(dir) {
            return Ok(());
        }
        let rel =
            dir.strip_prefix(&self.dest).map_err(|_| FetchError { reason: "outside DEST".into(), retry: false })?;
        let mut cur = self.dest.clone();
        for c in rel.components() {
            cur.push(c);
            if self.dirs.lock().expect("lock").contains(&cur) {
                continue;
            }
            let check = |m: std::fs::Metadata| {
                if m.file_type().is_symlink() {
                    Err(FetchError {
                        reason: format!("{} is a symbolic link, not followed", cur.display()),
                        retry: false,
                    })
                } else if !m.is_dir() {
                    Err(FetchError { reason: format!("{} exists and is not a directory", cur.display()), retry: false })
                } else {
                    Ok(())
                }
            };
            match std::fs::symlink_metadata(&cur) {
                Ok(m) => check(m)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&cur) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        check(std::fs::symlink_metadata(&cur).map_err(|e| FetchError::io("cannot inspect", &cur, e))?)?
                    }
                    Err(e) => return Err(FetchError::io("cannot create", &cur, e)),
                },
                Err(e) => return Err(FetchError::io("cannot inspect", &cur, e)),
            }
            self.dirs.lock().expect("lock").insert(cur.clone());
        }
        Ok(())
    }

    /// Fetch one object into place; returns (ETag, size) of what was written.
    pub(super) async fn fetch(&self, obj: &Listed, local: &Path) -> Result<(String, u64), String> {
        let parent = local.parent().expect("a key has a file name");
        self.ensure_dir(parent).map_err(|e| e.reason)?;
        let location = ObjectPath::parse(&obj.key).map_err(|e| format!("not a valid object path: {e}"))?;
        let mut backoff = Backoff::new(&retry_config().backoff);
        let mut attempt = 1;
        loop {
            match self.fetch_once(&location, local, is_digest(&obj.key)).await {
                Ok(done) => return Ok(done),
                Err(e) if e.retry && attempt < FETCH_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next()).await;
                }
                Err(e) => return Err(e.reason),
            }
        }
    }

    pub(super) async fn fetch_once(
        &self,
        location: &ObjectPath,
        local: &Path,
        digest: bool,
    ) -> Result<(String, u64), FetchError> {
        let tmp = tmp_path(local);
        let mut written = 0u64;
        let result = self.fetch_to(location, local, &tmp, digest, &mut written).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            self.bar.dec(written);
        }
        result
    }

    pub(super) async fn fetch_to(
        &self,
        location: &ObjectPath,
        local: &Path,
        tmp: &Path,
        digest: bool,
        written: &mut u64,
    ) -> Result<(String, u64), FetchError> {
        let got = self.store.get_opts(location, GetOptions::default()).await.map_err(store_error)?;
        let etag = got.meta.e_tag.clone().unwrap_or_default();
        let size = got.meta.size;
        let metadata = digest.then(|| {
            let attr = |name: &'static str| {
                got.attributes.get(&Attribute::Metadata(name.into())).map(|v| v.as_ref().to_string())
            };
            DigestMetadata { signature: attr("signature"), signature_algorithm: attr("signature-algorithm") }
        });
        // A stale temporary file (or anything planted under its name) is replaced, never followed.
        let _ = tokio::fs::remove_file(tmp).await;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await
            .map_err(|e| FetchError::io("cannot create", tmp, e))?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error)?;
            file.write_all(&chunk).await.map_err(|e| FetchError::io("cannot write", tmp, e))?;
            *written += chunk.len() as u64;
            self.bar.inc(chunk.len() as u64);
        }
        file.flush().await.map_err(|e| FetchError::io("cannot write", tmp, e))?;
        file.sync_all().await.map_err(|e| FetchError::io("cannot sync", tmp, e))?;
        drop(file);
        if *written != size {
            return Err(FetchError { reason: format!("short read: {written} of {size} bytes"), retry: true });
        }
        if let Some(m) = metadata {
            let side = sidecar_path(local);
            let json = serde_json::to_vec_pretty(&m).expect("serializable");
            tokio::task::spawn_blocking(move || {
                write_atomically(&side, &json).map_err(|e| FetchError::io("cannot write", &side, e))
            })
            .await
            .map_err(|e| FetchError { reason: e.to_string(), retry: false })??;
        }
        tokio::fs::rename(tmp, local).await.map_err(|e| FetchError::io("cannot rename into", local, e))?;
        Ok((etag, size))
    }
}

pub(super) fn store_error(e: object_store::Error) -> FetchError {
    let retry = matches!(e, object_store::Error::Generic { .. });
    let reason = match &e {
        object_store::Error::NotFound { .. } => "not found (deleted after it was listed?)".to_string(),
        _ => e.to_string(),
    };
    FetchError { reason, retry }
}
