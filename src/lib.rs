//! trailscope: offline AWS CloudTrail analytics.
//!
//! Stages, each a folder, each handing a value to the next:
//! **source** (find files, filters, the S3 layout, `pull`) → **ingest** (inflate, parse, map
//! CloudTrail records to columns) → **store** (the Parquet lake: write, compact, S3 mirror) →
//! **query** (inputs as one dataset; one file per question; the SQL pack) → **output** (one writer
//! per format) and **report** (the access-review pack). `iam` (policies, the action catalogue) and
//! `verify` (log file integrity) stand beside them. The command line lives in the binary
//! (`src/bin/trailscope/`).

pub mod error;
pub mod fs;
pub mod iam;
pub mod ingest;
pub mod layout;
pub mod output;
pub mod progress;
pub mod query;
pub mod report;
pub mod sigma;
pub mod source;
pub mod store;
pub mod time;
pub mod verify;
