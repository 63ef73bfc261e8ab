//! `trailscope scan`: read the inputs (or ingest them into a store) and account for every file and
//! event: how many were read, skipped, failed, de-duplicated, and the events by account, region, day.

use std::io::{IsTerminal, Write};

use polars::prelude::*;
use serde::Serialize;

use crate::cli::{ScanArgs, SummaryFormat};
use trailscope::error::{Error, PolarsContext, Result};
use trailscope::fs::printable;
use trailscope::ingest::frame::col_name as c;
use trailscope::ingest::pipeline::{ReadOptions, ReadStats};
use trailscope::output;
use trailscope::query::dataset;
use trailscope::query::scope::{Count, Scope, ScopeFold};
use trailscope::source;
use trailscope::source::filter::Filter;
use trailscope::store::write::{self, IngestStats};
use trailscope::time::format_ms;

#[derive(Serialize)]
pub struct ScanSummary {
    #[serde(flatten)]
    read: ReadStats,
    events: u64,
    duplicates: u64,
    first_event_time: Option<String>,
    last_event_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    ingest: Option<IngestStats>,
    by_account: Vec<Count>,
    by_region: Vec<Count>,
    by_day: Vec<Count>,
}

/// The string columns the summary and the filters read.
const SUMMARY_COLUMNS: &[&str] = &[c::EVENT_ID, c::RECIPIENT_ACCOUNT_ID, c::ACCOUNT_ID, c::AWS_REGION];

/// Run `scan`; returns true when some input was bad (exit code 2).
pub fn run(args: &ScanArgs) -> Result<bool> {
    let filter = args.input.filter()?;
    // The summary needs only these string columns (and event_time): fill no others. Its counts are
    // folded a batch at a time (`dataset::fold`).
    let summary_opts = ReadOptions { columns: Some(SUMMARY_COLUMNS), ..args.input.read_options() };
    let summary = match &args.store {
        Some(store) => {
            // The store keeps whole files, so discovery does not prune by the filter here.
            let inputs = source::discover(&args.input.inputs, &Filter::default())?;
            let s3 = store.to_str().filter(|s| trailscope::store::s3::is_s3(s));
            let mirror =
                s3.map(|url| trailscope::store::s3::Mirror::sync(url, &args.input.s3_options())).transpose()?;
            let local = mirror.as_ref().map_or(store.clone(), |m| m.dir.clone());
            let before = mirror.as_ref().map(|m| m.snapshot());
            let opts = args.input.read_options();
            let (ingest_stats, read) = write::ingest(&local, inputs, &opts, args.input.quiet)?;
            if let (Some(m), Some(before)) = (&mirror, &before) {
                m.upload_new(before)?;
            }
            // The summary is of the whole store (earlier runs' events too); the files accounted for
            // are this run's.
            let stored = dataset::discover(std::slice::from_ref(&local), &filter, &args.input.s3_options())?;
            let mut scope = ScopeFold::default();
            dataset::fold(stored, &filter, &summary_opts, true, |df| scope.add(&df))?;
            let (duplicates, store) = (ingest_stats.duplicates, trailscope::fs::display_path(store));
            ScanSummary::new(scope.finish(), read, duplicates, Some(ingest_stats), Some(store))
        }
        None => {
            let inputs = dataset::discover(&args.input.inputs, &filter, &args.input.s3_options())?;
            let mut scope = ScopeFold::default();
            let folded = dataset::fold(inputs, &filter, &summary_opts, args.input.quiet, |df| scope.add(&df))?;
            ScanSummary::new(scope.finish(), folded.stats, folded.duplicates, None, None)
        }
    };
    let bad = super::warn_bad_input(&summary.read);
    write_summary(args, &summary)?;
    Ok(bad)
}

fn write_summary(args: &ScanArgs, summary: &ScanSummary) -> Result<()> {
    let mut out = super::open_output(args.output.as_deref())?;
    let format = args.format.unwrap_or(if args.output.is_none() && std::io::stdout().is_terminal() {
        SummaryFormat::Table
    } else {
        SummaryFormat::Json
    });
    match format {
        SummaryFormat::Json => {
            serde_json::to_writer_pretty(&mut out, summary).map_err(Error::json_write)?;
            writeln!(out).map_err(|e| Error::io("<output>", e))?;
        }
        SummaryFormat::Table => write_table(&mut out, summary)?,
    }
    out.flush().map_err(|e| Error::io("<output>", e))
}

impl ScanSummary {
    fn new(scope: Scope, read: ReadStats, duplicates: u64, ingest: Option<IngestStats>, store: Option<String>) -> Self {
        ScanSummary {
            events: scope.events,
            duplicates,
            first_event_time: scope.first_ms.map(format_ms),
            last_event_time: scope.last_ms.map(format_ms),
            store,
            ingest,
            by_account: scope.by_account,
            by_region: scope.by_region,
            by_day: scope.by_day,
            read,
        }
    }
}

fn write_table(w: &mut dyn Write, s: &ScanSummary) -> Result<()> {
    let io = |e| Error::io("<output>", e);
    let r = &s.read;
    let mut lines = vec![
        ("files read", r.files.to_string()),
        ("files skipped", r.files_skipped.to_string()),
        ("files failed", r.files_failed.to_string()),
        ("records", r.records.to_string()),
        ("records rejected", r.records_rejected.to_string()),
        ("records without eventID", r.records_without_event_id.to_string()),
        ("duplicates", s.duplicates.to_string()),
        ("events", s.events.to_string()),
        ("first event", s.first_event_time.clone().unwrap_or_default()),
        ("last event", s.last_event_time.clone().unwrap_or_default()),
        ("MB read / decoded", format!("{:.1} / {:.1}", r.bytes_read as f64 / 1e6, r.bytes_decoded as f64 / 1e6)),
    ];
    if let Some(i) = &s.ingest {
        lines.push(("files ingested", i.files_ingested.to_string()));
        lines.push(("files unchanged", i.files_unchanged.to_string()));
        lines.push(("events written", i.events_written.to_string()));
    }
    for (k, v) in lines {
        writeln!(w, "{k:<24} {v}").map_err(io)?;
    }
    for (title, rows) in [("account", &s.by_account), ("region", &s.by_region), ("day", &s.by_day)] {
        writeln!(w, "\nevents by {title}").map_err(io)?;
        let keys = Column::new(title.into(), rows.iter().map(|c| c.key.clone()).collect::<Vec<_>>());
        let n = Column::new("events".into(), rows.iter().map(|c| c.events).collect::<Vec<_>>());
        let df = DataFrame::new(rows.len(), vec![keys, n]).context("table")?;
        output::write_table(w, &df, 80)?;
    }
    for (title, list) in [("skipped", &r.skipped), ("failed", &r.failed)] {
        if !list.is_empty() {
            writeln!(w, "\n{title} files").map_err(io)?;
            for f in list {
                writeln!(w, "  {}: {}", f.path, printable(&f.reason)).map_err(io)?;
            }
        }
    }
    if !r.rejected.is_empty() {
        writeln!(w, "\nrejected records").map_err(io)?;
        for x in &r.rejected {
            writeln!(w, "  {}: {} records rejected: {}", x.path, x.records, printable(&x.reason)).map_err(io)?;
        }
    }
    Ok(())
}
