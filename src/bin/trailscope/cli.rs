//! The command line: clap definitions only. Flags are parsed into these plain structs, and each
//! command in `commands/` turns them into library calls. The questions' flags are in their own files
//! (`commands/`); the flag groups they share (`InputArgs`, `OutputArgs`, `AllowedArgs`) are here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use trailscope::error::Result;
use trailscope::ingest::pipeline::ReadOptions;
use trailscope::output::Format;
use trailscope::source::filter::Filter;

#[derive(Parser, Debug)]
#[command(name = "trailscope", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TRAILSCOPE_COMMIT"), ")"), about = "Offline AWS CloudTrail analytics", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads for reading and for queries (default: one per core).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read archives (or a store): count files and events, report bad input; with --store, ingest.
    Scan(ScanArgs),
    // The questions (root, activity, ...): one subcommand per entry of `commands::QUESTIONS`.
    #[command(flatten)]
    Question(crate::commands::questions::Asked),
    /// Download CloudTrail archives from S3 (only what the filters need; resumable).
    Pull(PullArgs),
    /// Offline log file integrity validation from the digest files in a tree.
    Verify(VerifyArgs),
    /// The quarterly access-review pack: one self-contained HTML file (or JSON).
    Report(ReportArgs),
    /// Merge a store's small Parquet files per partition, atomically.
    Compact(CompactArgs),
    /// Write the questions as SQL for Spark, Trino, Athena or DuckDB over the store's lake.
    SqlPack(SqlPackArgs),
}

/// How to write a question's answer.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format (table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of stdout (needed for parquet).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write only this section of a multi-section answer (e.g. by_day).
    #[arg(long, value_name = "NAME")]
    pub section: Option<String>,
    /// Only these columns, in this order (comma-separated), in every format.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Tables as wide as their cells: not fitted to the terminal (COLUMNS or its width).
    #[arg(long)]
    pub wide: bool,
    /// Show times in tables at this UTC offset (e.g. +02:00, -05:30); other formats stay UTC.
    #[arg(long, value_name = "OFFSET", value_parser = trailscope::time::parse_offset, allow_hyphen_values = true)]
    pub tz: Option<chrono::FixedOffset>,
    /// Show times in tables in this machine's time zone (TZ); other formats stay UTC.
    #[arg(long, conflicts_with = "tz")]
    pub localtime: bool,
}

impl OutputArgs {
    /// Where and how the answer is written.
    pub fn sink(&self, format: trailscope::output::Format) -> trailscope::output::Sink<'_> {
        let mut sink = trailscope::output::Sink::new(format, self.output.as_deref());
        if self.wide {
            sink.width = None;
        }
        sink.columns = self.columns.as_deref();
        sink.zone = self.zone();
        sink
    }

    /// The zone tables show times in: `--tz`, `--localtime`, else UTC.
    pub fn zone(&self) -> trailscope::time::Zone {
        use trailscope::time::Zone;
        match (self.tz, self.localtime) {
            (Some(off), _) => Zone::Fixed(off),
            (None, true) => Zone::Local,
            (None, false) => Zone::Utc,
        }
    }
}

/// Parameters of the policy-condition checks (TS-OUTSIDE-NETWORK, TS-OUTSIDE-HOURS).
#[derive(Args, Debug, Clone, Default)]
pub struct AllowedArgs {
    /// A network calls are expected from (address or CIDR, IPv4/IPv6); repeatable. Enables TS-OUTSIDE-NETWORK.
    #[arg(long, value_name = "CIDR")]
    pub allowed_cidr: Vec<String>,
    /// Hours calls are expected in, e.g. "Mon-Fri 07:00-19:00 +02:00" (days, HH:MM-HH:MM, a fixed UTC
    /// offset or UTC; zone names are not supported); repeatable. Enables TS-OUTSIDE-HOURS.
    #[arg(long, value_name = "WINDOW")]
    pub allowed_hours: Vec<String>,
}

impl AllowedArgs {
    pub fn params(&self) -> Result<trailscope::query::detect::Params> {
        Ok(trailscope::query::detect::Params {
            allowed_cidrs: self.allowed_cidr.iter().map(|s| s.parse()).collect::<Result<Vec<_>>>()?,
            allowed_hours: self.allowed_hours.iter().map(|s| s.parse()).collect::<Result<Vec<_>>>()?,
        })
    }
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
    /// Memory to work in, e.g. 512MiB or 2GiB: inputs larger than half of it are read a batch at a
    /// time and spilled to temporary files by hour ($TMPDIR).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub memory_limit: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub s3: S3StoreArgs,
}

/// How to reach a store on S3 (an INPUT or `--store` of the form s3://BUCKET/PREFIX).
#[derive(Args, Debug, Clone, Default)]
pub struct S3StoreArgs {
    /// Named profile of the shared AWS config/credentials files (for s3:// stores).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Region of the S3 client (for s3:// stores).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Endpoint of an S3-compatible server (for s3:// stores).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Local mirror of an s3:// store (default: under ~/.cache/trailscope/s3-stores).
    #[arg(long, value_name = "DIR")]
    pub s3_cache: Option<PathBuf>,
}

impl InputArgs {
    pub fn filter(&self) -> Result<Filter> {
        let mut f = Filter::new(self.from.as_deref(), self.to.as_deref(), self.account.clone(), self.region.clone())?;
        f.late_delivery = Some(chrono::Duration::hours(i64::from(self.late_delivery_hours)));
        Ok(f)
    }

    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            max_file_bytes: self.max_file_mb.saturating_mul(1 << 20),
            memory_limit: self.memory_limit,
            ..Default::default()
        }
    }

    /// How to reach s3:// stores given as INPUT.
    pub fn s3_options(&self) -> trailscope::store::s3::S3StoreOptions {
        trailscope::store::s3::S3StoreOptions {
            profile: self.s3.profile.clone(),
            s3_region: self.s3.s3_region.clone(),
            endpoint_url: self.s3.endpoint_url.clone(),
            cache: self.s3.s3_cache.clone(),
        }
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
    /// Write the events into this Parquet store (a directory, or s3://BUCKET/PREFIX; created if
    /// absent); only new or changed files are read.
    #[arg(long, value_name = "DIR|S3_URL")]
    pub store: Option<PathBuf>,
    /// Write the output to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64 kb"), Ok(64 << 10));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The tree to check (as `pull` writes it, or any copy of the bucket's keys).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Public keys (the JSON `aws cloudtrail list-public-keys` prints) to check digest signatures.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<PathBuf>,
    /// Output format (table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<VerifyFormat>,
    /// Write the output to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse files that decompress past this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_file_mb: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// s3://BUCKET[/PREFIX]
    #[arg(value_name = "S3_URL")]
    pub source: String,
    /// Local directory; keys map to paths under it one to one.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// Only events at or after this time (files are selected by their key's date, with a margin).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only events before this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Only this account; repeatable.
    #[arg(long, value_name = "ID")]
    pub account: Vec<String>,
    /// Only this trail region (a filter, like every command's --region); repeatable.
    #[arg(long, value_name = "REGION")]
    pub region: Vec<String>,
    /// Hours CloudTrail may deliver late: files this much past --to are fetched too.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    pub late_delivery_hours: u32,
    /// Skip digest files (CloudTrail-Digest/), which are fetched by default for `verify`.
    #[arg(long)]
    pub no_digests: bool,
    /// Named profile of the shared AWS config/credentials files.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Region of the S3 client (default: AWS_REGION, the profile's, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Endpoint of an S3-compatible server (e.g. http://127.0.0.1:9000).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Parallel downloads.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub jobs: usize,
    /// Output format of the summary (table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<SummaryFormat>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// IAM snapshot(s) (`aws iam get-account-authorization-details`).
    #[arg(long, value_name = "AUTHZ.json")]
    pub iam: Vec<PathBuf>,
    /// The IAM credential report (CSV).
    #[arg(long, value_name = "FILE")]
    pub credential_report: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Write the attestation sheet for the quarterly review here (CSV; needs --iam): one row per
    /// principal and granted action with a suggested verdict and empty reviewer/decision columns.
    #[arg(long, value_name = "FILE.csv", requires = "iam")]
    pub attestation: Option<PathBuf>,
    /// Write the report's data as JSON (`--format json`, to stdout or -o).
    #[arg(long, value_enum)]
    pub format: Option<SummaryFormat>,
    /// Write the JSON to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub allowed: AllowedArgs,
    /// The report's title.
    #[arg(long, value_name = "TEXT", default_value = "CloudTrail access review")]
    pub title: String,
    /// An access key unused for this many days is stale (credential report).
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    pub stale_days: i64,
    /// Judge key and password ages as of this time (default: now).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// List at most N rows of each list of events or findings (root events, findings to act on,
    /// console sign-ins without MFA, SSM sessions); their totals are always given, and the
    /// commands themselves (`root`, `detect`) list every row.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_rows: usize,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The store directory.
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// Merge a partition's files when it has at least this many.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_files: usize,
    /// Output format of the summary (table on a terminal, JSON otherwise).
    #[arg(long, value_enum)]
    pub format: Option<SummaryFormat>,
}

pub use trailscope::query::sql_pack::Dialect;

#[derive(Args, Debug)]
pub struct SqlPackArgs {
    /// The SQL dialect.
    #[arg(long, value_enum)]
    pub dialect: Dialect,
    /// Directory to write one .sql file per question into (stdout when absent).
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Where the lake is, for the CREATE TABLE statement (e.g. s3://bucket/store/events).
    #[arg(long, value_name = "URL", default_value = "s3://YOUR-BUCKET/trailscope-store/events")]
    pub location: String,
}

/// A size: a number of bytes with an optional unit, `K`/`KiB`/`KB`, `M`/`MiB`/`MB`, `G`/`GiB`/`GB`
/// (all binary: 1K = 1024 bytes), e.g. `512MiB`, `2G`, `1073741824`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|ch: char| !(ch.is_ascii_digit() || ch == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size (e.g. 512MiB, 2GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?} (use KiB, MiB or GiB)")),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as u64)
}
