//! A store on S3 (`--store s3://BUCKET/PREFIX`): the same layout as a local store, kept in step with a
//! local mirror. Before an ingest, the mirror fetches what it lacks (the marker, every manifest, and
//! the Parquet parts: parts are immutable, so a name already present is complete); the ingest runs on
//! the mirror; then the files it created are uploaded, Parquet parts first and manifests last, so a
//! manifest on S3 only ever names parts that are already there (the manifest is the commit, as
//! locally). Writers share no object: many machines can ingest shards into one S3 store at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};
use crate::source::pull::{parse_s3_url, unsafe_key};

/// Where and how to reach an S3 store.
#[derive(Debug, Clone, Default)]
pub struct S3StoreOptions {
    pub profile: Option<String>,
    pub s3_region: Option<String>,
    pub endpoint_url: Option<String>,
    /// The local mirror (default: a folder per bucket and prefix under the user's cache directory).
    pub cache: Option<PathBuf>,
}

pub fn is_s3(url: &str) -> bool {
    url.starts_with("s3://")
}

fn default_cache(bucket: &str, prefix: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| crate::fs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let tag: String = prefix.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    base.join("trailscope").join("s3-stores").join(bucket).join(if tag.is_empty() { "_root".into() } else { tag })
}

/// A local mirror of an S3 store.
pub struct Mirror {
    store: Arc<AmazonS3>,
    prefix: String,
    pub dir: PathBuf,
    runtime: tokio::runtime::Runtime,
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet" || x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn s3_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Network { context: format!("S3 store: {what}"), cause: e.to_string().into() }
}

impl Mirror {
    /// Connect and bring the mirror up to date.
    pub fn sync(url: &str, opts: &S3StoreOptions) -> Result<Mirror> {
        let u = parse_s3_url(url)?;
        let store = Arc::new(crate::source::pull::s3_client(
            &u.bucket,
            opts.profile.clone(),
            opts.s3_region.clone(),
            opts.endpoint_url.clone(),
        )?);
        let dir = opts.cache.clone().unwrap_or_else(|| default_cache(&u.bucket, &u.prefix));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let m = Mirror { store, prefix: u.prefix, dir, runtime };
        m.download_missing()?;
        Ok(m)
    }

    fn download_missing(&self) -> Result<()> {
        let prefix = ObjectPath::from(self.prefix.trim_end_matches('/'));
        let store = self.store.clone();
        let dir = self.dir.clone();
        let strip = self.prefix.clone();
        self.runtime.block_on(async move {
            let mut listing = store.list(if strip.is_empty() { None } else { Some(&prefix) });
            let mut todo = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| s3_err("listing", e))?;
                let key = meta.location.to_string();
                let rel = key.strip_prefix(&strip).unwrap_or(&key).to_string();
                if !(rel.starts_with("_trailscope/") || rel.starts_with("events/")) || unsafe_key(&rel).is_some() {
                    continue;
                }
                let local = dir.join(&rel);
                // Parts and manifests never change once written; the marker is tiny.
                if local.exists() && !rel.ends_with("store.json") {
                    continue;
                }
                todo.push((meta.location, local));
            }
            let results: Vec<Result<()>> = futures::stream::iter(todo)
                .map(|(loc, local)| {
                    let store = store.clone();
                    async move {
                        let bytes = store
                            .get(&loc)
                            .await
                            .map_err(|e| s3_err("download", e))?
                            .bytes()
                            .await
                            .map_err(|e| s3_err("download", e))?;
                        let parent = local.parent().expect("parent");
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                        let tmp = parent
                            .join(format!(".{}.download", local.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
                        std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
                        std::fs::rename(&tmp, &local).map_err(|e| Error::io(&local, e))
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
        })
    }

    /// The files of the mirror now (to tell what an ingest added).
    pub fn snapshot(&self) -> Vec<PathBuf> {
        files_under(&self.dir)
    }

    /// Upload the files created since `before`: Parquet parts first, then the marker and manifests.
    pub fn upload_new(&self, before: &[PathBuf]) -> Result<u64> {
        let known: hashbrown::HashSet<&PathBuf> = before.iter().collect();
        let mut new: Vec<PathBuf> = self.snapshot().into_iter().filter(|p| !known.contains(p)).collect();
        // store.json may have been rewritten by create_or_open on a fresh store: upload it if new.
        new.sort_by_key(|p| (p.extension().is_some_and(|x| x == "json"), p.clone()));
        let n = new.len() as u64;
        let store = self.store.clone();
        let dir = self.dir.clone();
        let prefix = self.prefix.clone();
        self.runtime.block_on(async move {
            for p in new {
                let rel = p.strip_prefix(&dir).expect("under the mirror").to_string_lossy().replace('\\', "/");
                let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                let loc = ObjectPath::from(format!("{prefix}{rel}"));
                store.put(&loc, PutPayload::from(bytes)).await.map_err(|e| s3_err("upload", e))?;
            }
            Ok::<(), Error>(())
        })?;
        Ok(n)
    }
}
