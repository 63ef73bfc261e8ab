//! The command line: clap definitions only. Flags are parsed into these plain structs, and each
//! command in `commands/` turns them into library calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::Result;
use crate::filter::Filter;
use crate::scan::ReadOptions;

#[derive(Parser, Debug)]
#[command(name = "trailscope", version, about = "Offline AWS CloudTrail analytics", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read archives (or a store): count files and events, report bad input; with --store, ingest.
    Scan(ScanArgs),
}

/// Inputs and the filters every command shares.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Files, directories (walked recursively) and trailscope stores, in any mix.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Keep events at or after this time (RFC 3339, or a date meaning midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Keep events before this time (exclusive).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Keep events of this account (recipientAccountId, else the caller's account); repeatable.
    #[arg(long, value_name = "ID")]
    pub account: Vec<String>,
    /// Keep events of this region; repeatable.
    #[arg(long, value_name = "REGION")]
    pub region: Vec<String>,
    /// Hours CloudTrail may deliver an event late, for pruning files by the date in their S3 key.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub late_delivery_hours: u32,
    /// Refuse files that decompress to more than this many MiB (gzip bomb guard).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_file_mb: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl InputArgs {
    pub fn filter(&self) -> Result<Filter> {
        let mut f = Filter::new(self.from.as_deref(), self.to.as_deref(), self.account.clone(), self.region.clone())?;
        f.late_delivery = Some(chrono::Duration::hours(i64::from(self.late_delivery_hours)));
        Ok(f)
    }

    pub fn read_options(&self) -> ReadOptions {
        ReadOptions { max_file_bytes: self.max_file_mb.saturating_mul(1 << 20) }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format (table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<SummaryFormat>,
    /// Write the events into this Parquet store (created if absent); only new or changed files are read.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Write the output to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
