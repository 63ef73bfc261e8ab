//! `trailscope pull`: download CloudTrail archives from S3 (see `pull.rs`) and print what was done:
//! objects listed, downloaded, already present, refused (keys that would escape DEST) and failed.

use std::io::{IsTerminal, Write};

use crate::cli::{PullArgs, SummaryFormat};
use trailscope::error::{Error, Result};
use trailscope::source::filter::Filter;
use trailscope::source::pull::{self, PullOptions, PullSummary};

/// Run `pull`; returns true when some object failed or was refused (exit code 2).
pub fn run(args: &PullArgs) -> Result<bool> {
    let mut filter = Filter::new(args.from.as_deref(), args.to.as_deref(), args.account.clone(), args.region.clone())?;
    filter.late_delivery = Some(chrono::Duration::hours(i64::from(args.late_delivery_hours)));
    let opts = PullOptions {
        source: args.source.clone(),
        dest: args.dest.clone(),
        filter,
        digests: !args.no_digests,
        profile: args.profile.clone(),
        s3_region: args.s3_region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        jobs: args.jobs,
        quiet: args.quiet,
    };
    let summary = pull::pull(&opts)?;
    for p in &summary.refused_keys {
        eprintln!("trailscope: refused s3 key {:?}: {}", p.key, p.reason);
    }
    for p in &summary.failed_keys {
        eprintln!("trailscope: failed s3 key {:?}: {}", p.key, p.reason);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let format =
        args.format.unwrap_or(if std::io::stdout().is_terminal() { SummaryFormat::Table } else { SummaryFormat::Json });
    let io = |e| Error::io("<output>", e);
    match format {
        SummaryFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &summary).map_err(Error::json_write)?;
            writeln!(out).map_err(io)?;
        }
        SummaryFormat::Table => write_table(&mut out, &summary)?,
    }
    out.flush().map_err(io)?;
    Ok(summary.refused > 0 || summary.failed > 0)
}

fn write_table(w: &mut dyn Write, s: &PullSummary) -> Result<()> {
    let io = |e| Error::io("<output>", e);
    let rate = if s.elapsed_seconds > 0.0 { s.bytes as f64 / 1e6 / s.elapsed_seconds } else { 0.0 };
    let lines = [
        ("source", s.source.clone()),
        ("destination", s.dest.clone()),
        ("objects listed", s.objects_listed.to_string()),
        ("downloaded", s.downloaded.to_string()),
        ("already present", s.already_present.to_string()),
        ("refused", s.refused.to_string()),
        ("failed", s.failed.to_string()),
        ("MB downloaded / listed", format!("{:.1} / {:.1}", s.bytes as f64 / 1e6, s.bytes_listed as f64 / 1e6)),
        ("list requests", s.list_requests.to_string()),
        ("seconds", format!("{:.1} ({rate:.1} MB/s)", s.elapsed_seconds)),
    ];
    for (k, v) in lines {
        writeln!(w, "{k:<24} {v}").map_err(io)?;
    }
    for (title, list) in [("refused keys", &s.refused_keys), ("failed keys", &s.failed_keys)] {
        if !list.is_empty() {
            writeln!(w, "\n{title}").map_err(io)?;
            for p in list {
                writeln!(w, "  {:?}: {}", p.key, p.reason).map_err(io)?;
            }
        }
    }
    Ok(())
}
