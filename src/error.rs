//! Library error type. Every variant names what it was working on and keeps its source, so the binary
//! can print the whole chain (`anyhow` lives only in `main.rs`).

use std::path::PathBuf;

/// Errors that stop a whole command (as opposed to a single bad input file, which is reported in the
/// scan summary and does not stop the run).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is part of the message and not also a `source`: `anyhow`'s `{:#}` prints a message
    // and then its sources, which printed "Permission denied (os error 13)" twice (#13).
    #[error("{}: {cause}", crate::fs::display_path(path))]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("invalid filter: {0}")]
    Filter(String),
    #[error("store {}: {reason}", crate::fs::display_path(path))]
    Store { path: PathBuf, reason: String },
    #[error("{context}: {cause}")]
    Polars { context: String, cause: polars::error::PolarsError },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
    }
}

/// Attach a context string to a Polars result, keeping the source error.
pub trait PolarsContext<T> {
    fn context(self, context: &str) -> Result<T>;
}

impl<T> PolarsContext<T> for polars::error::PolarsResult<T> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|cause| Error::Polars { context: context.to_string(), cause })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary prints `{:#}` of an `anyhow::Error`: the cause must appear once (#13).
    #[test]
    fn a_cause_is_printed_once() {
        let e = Error::io("/x/y", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let text = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(text.matches("ermission denied").count(), 1, "{text}");
        assert!(text.starts_with("/x/y: "), "{text}");
    }
}
