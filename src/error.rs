//! Library error type. Every variant names what it was working on and keeps its source, so the binary
//! can print the whole chain (`anyhow` lives only in `main.rs`).

use std::path::PathBuf;

/// Errors that stop a whole command (as opposed to a single bad input file, which is reported in the
/// scan summary and does not stop the run).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", crate::fs::display_path(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid filter: {0}")]
    Filter(String),
    #[error("store {}: {reason}", crate::fs::display_path(path))]
    Store { path: PathBuf, reason: String },
    #[error("{context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Attach a context string to a Polars result, keeping the source error.
pub trait PolarsContext<T> {
    fn context(self, context: &str) -> Result<T>;
}

impl<T> PolarsContext<T> for polars::error::PolarsResult<T> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|source| Error::Polars { context: context.to_string(), source })
    }
}
