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
    /// A JSON document could not be read or written (not an I/O failure: see [`Error::json_write`]).
    #[error("{context}: {cause}")]
    Json { context: String, cause: serde_json::Error },
    /// An input file is not what it was given as (a key list, an IAM snapshot, a credential report).
    #[error("{}: {reason}", crate::fs::display_path(path))]
    InvalidInput { path: PathBuf, reason: String },
    /// The network or a remote service (S3, HTTP) failed: see [`Error::network`].
    #[error("{context}: {cause}")]
    Network { context: String, cause: Box<dyn std::error::Error + Send + Sync> },
    /// The command line asks for something that cannot be done (a bad value, a missing flag, a bad
    /// query). Only for those: a failure of the input or of the machine has its own variant.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
    }

    /// A failure to write JSON to the command's output: an I/O failure stays one (so that a closed
    /// pipe is recognised, #11), anything else (a map key that is not a string) is `Json`.
    pub fn json_write(cause: serde_json::Error) -> Self {
        if cause.is_io() {
            Error::io("<output>", cause.into())
        } else {
            Error::Json { context: "writing JSON".into(), cause }
        }
    }

    /// `path` is not the kind of file it was given as.
    pub fn invalid_input(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { path: path.into(), reason: reason.into() }
    }

    /// A network or remote-service failure while doing `context`, keeping the client's error.
    pub fn network(context: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Network { context: context.into(), cause: Box::new(cause) }
    }

    /// Did the reader of our output go away (`| head`)? Then the command ends quietly, exit 0.
    pub fn is_broken_pipe(&self) -> bool {
        let kind = match self {
            Error::Io { cause, .. } => Some(cause.kind()),
            Error::Json { cause, .. } => cause.io_error_kind(),
            _ => None,
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
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

    /// Every variant that carries a cause prints it once, after its context.
    #[test]
    fn every_cause_is_printed_once() {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let errors = [
            Error::Json { context: "reading k.json".into(), cause: json },
            Error::network("listing s3://b/", std::io::Error::other("connection refused")),
            Error::invalid_input("/k.json", "not `aws cloudtrail list-public-keys` output"),
        ];
        for e in errors {
            let shown = e.to_string();
            let text = format!("{:#}", anyhow::Error::from(e));
            assert_eq!(text, shown, "no cause repeated by the chain");
        }
    }

    /// A JSON writer that hit a closed pipe is an I/O error the binary recognises (#11: it was a
    /// usage error, so `trailscope verify --format json | head -c1` said "Broken pipe", exit 1).
    #[test]
    fn a_closed_pipe_under_json_is_recognised() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        assert!(Error::json_write(e).is_broken_pipe());
        let not_io = serde_json::to_string(&std::collections::BTreeMap::from([((1, 2), 3)])).unwrap_err();
        assert!(!Error::json_write(not_io).is_broken_pipe());
    }
}
