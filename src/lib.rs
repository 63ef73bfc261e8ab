//! trailscope: offline AWS CloudTrail analytics.
//!
//! Stages, each handing a value to the next: **source** (find files: `source`) → **ingest** (inflate,
//! parse, build columns: `decode`, `parse`, `record`, `frame`, `scan`; persist: `store`, `ingest`) →
//! **dataset** (inputs and filters as one lazy frame: `dataset`, `filter`) → **report** (`report`).
//! The binary's subcommands live in `commands`.

pub mod cli;
pub mod commands;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod filter;
pub mod frame;
pub mod iam;
pub mod ingest;
pub mod lake;
pub mod parse;
pub mod progress;
pub mod pull;
pub mod query;
pub mod record;
pub mod report;
pub mod review;
pub mod s3store;
pub mod scan;
pub mod source;
pub mod store;
pub mod verify;
