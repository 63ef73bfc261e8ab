//! `trailscope report`: the access-review pack (see `review`): one self-contained HTML file
//! (`--html OUT.html`) and/or the same data as JSON (`--format json`, to stdout or `-o FILE`).

use std::io::Write;

use super::questions::load_in_any_order;
use crate::cli::{ReportArgs, SummaryFormat};
use trailscope::error::{Error, Result};
use trailscope::iam::authz::AuthorizationDetails;
use trailscope::report;

pub fn run(args: &ReportArgs) -> Result<bool> {
    let json_out = args.format == Some(SummaryFormat::Json) || args.output.is_some();
    if args.html.is_none() && !json_out && args.attestation.is_none() {
        return Err(Error::Usage(
            "say where the report goes: --html OUT.html, --attestation FILE.csv, and/or --format json (stdout, or -o FILE)"
                .into(),
        ));
    }
    if args.format == Some(SummaryFormat::Table) {
        return Err(Error::Usage("report writes HTML (--html) or JSON (--format json), not a table".into()));
    }
    let params = args.allowed.params()?;
    let authz = if args.iam.is_empty() {
        None
    } else {
        let mut az = AuthorizationDetails::default();
        for f in &args.iam {
            az.merge(AuthorizationDetails::load(f)?);
        }
        Some(az)
    };
    let credential_report = match &args.credential_report {
        Some(p) => Some((p.display().to_string(), std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?)),
        None => None,
    };
    let as_of_ms = match &args.as_of {
        Some(t) => trailscope::time::parse_instant(t)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    // In any order: every question of the report groups its events or sorts only the rows it lists,
    // and `detect` takes them in any order. A store is not put in time order first (over 10 M
    // events that spill took a minute), nor are raw files spilled by the hour and sorted.
    let data = load_in_any_order(&args.input, None)?;
    let bad = super::warn_bad_input(&data.stats);
    let i = &args.input;
    let opts = report::Options {
        title: args.title.clone(),
        inputs: i.inputs.clone(),
        params,
        allowed_cidrs: args.allowed.allowed_cidr.clone(),
        authz,
        credential_report,
        stale_days: args.stale_days,
        as_of_ms,
        max_file_bytes: i.max_file_mb.saturating_mul(1 << 20),
        memory_limit: i.memory_limit,
        max_rows: args.max_rows,
        filters: report::Filters {
            from: i.from.clone(),
            to: i.to.clone(),
            account: i.account.clone(),
            region: i.region.clone(),
        },
    };
    if let (Some(path), Some(az)) = (&args.attestation, &opts.authz) {
        let sheet = trailscope::query::unused::analyze(az, data.events.clone())?.attestation()?;
        let sink = trailscope::output::Sink::new(trailscope::output::Format::Csv, Some(path.as_path()));
        trailscope::output::write_sections(&sink, vec![("attestation".to_string(), sheet)])?;
    }
    if args.html.is_none() && !json_out {
        return Ok(bad);
    }
    let report = report::build(data, &opts)?;
    if let Some(path) = &args.html {
        let html = report::html::render(&report);
        std::fs::write(path, html).map_err(|e| Error::io(path, e))?;
    }
    if json_out {
        let mut w = super::open_output(args.output.as_deref())?;
        serde_json::to_writer_pretty(&mut w, &report).map_err(Error::json_write)?;
        writeln!(w).and_then(|()| w.flush()).map_err(|e| Error::io("<output>", e))?;
    }
    Ok(bad)
}
