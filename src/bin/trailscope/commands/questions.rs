//! The question commands (`root`, `activity`, `failures`, `timeline`, `detect`, `sql`): load the
//! dataset, ask the question (a module of `query`), collect each section once, write it.

use std::io::IsTerminal;
use trailscope::query::Run;

use polars::prelude::*;

use crate::cli::{
    ActivityArgs, ActivityBy, DetectArgs, FailuresArgs, InputArgs, OutputArgs, RootArgs, SessionsArgs, SqlArgs,
    TimelineArgs,
};
use trailscope::error::{PolarsContext, Result};
use trailscope::output::{self, Format};
use trailscope::query::dataset::{self, Dataset};
use trailscope::query::{self, Answer};

pub fn load(input: &InputArgs) -> Result<Dataset> {
    let filter = input.filter()?;
    let data = dataset::load(&input.inputs, &filter, &input.read_options(), &input.s3_options(), input.quiet)?;
    after_load(&data, input.quiet);
    Ok(data)
}

/// Record what was read for the closing summary (`closing`). An answer from no input is not silent:
/// say that nothing was found (an empty folder, a folder of other files).
fn after_load(data: &Dataset, quiet: bool) {
    after_read(&data.stats, data.stores.len(), quiet)
}

fn after_read(s: &trailscope::ingest::pipeline::ReadStats, stores: usize, quiet: bool) {
    super::closing::record(s, stores, quiet);
    if stores > 0 || s.records > 0 {
        return;
    }
    if s.files == 0 && s.files_failed == 0 {
        let skipped = if s.files_skipped > 0 {
            format!(" ({} file(s) skipped: `trailscope scan` lists them with the reason)", s.files_skipped)
        } else {
            String::new()
        };
        eprintln!("trailscope: no CloudTrail log file found in the input{skipped}: the answer is empty");
    } else if s.files > 0 {
        eprintln!("trailscope: the {} file(s) read hold no CloudTrail event: the answer is empty", s.files);
    }
}

/// `load`, filling only `columns` of the string columns from raw files (see `ReadOptions::columns`).
fn load_columns(input: &InputArgs, columns: &'static [&'static str]) -> Result<Dataset> {
    let filter = input.filter()?;
    let opts = trailscope::ingest::pipeline::ReadOptions { columns: Some(columns), ..input.read_options() };
    let data = dataset::load(&input.inputs, &filter, &opts, &input.s3_options(), input.quiet)?;
    after_load(&data, input.quiet);
    Ok(data)
}

pub fn format_of(out: &OutputArgs) -> Format {
    out.format.unwrap_or(if out.output.is_none() && std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

/// Write the answer's sections (all, or the one `--section` names). A single section in a row format
/// is written as it is produced; otherwise each section is collected once (they are aggregates, or
/// a table for a person to read).
pub fn write(answer: Answer, out: &OutputArgs) -> Result<()> {
    let mut sections: Vec<(String, LazyFrame)> =
        answer.sections.into_iter().filter(|(name, _)| out.section.as_ref().is_none_or(|s| s == name)).collect();
    if sections.is_empty() {
        return Err(trailscope::error::Error::Usage(format!(
            "no section named {:?}",
            out.section.as_deref().unwrap_or_default()
        )));
    }
    let sink = out.sink(format_of(out));
    if sections.len() == 1 && output::is_row_format(sink.format) {
        let (_, lf) = sections.pop().expect("one section");
        return output::write_stream(&sink, lf);
    }
    let mut frames = Vec::with_capacity(sections.len());
    for (name, lf) in sections {
        let df = lf.run().context(&format!("answering ({name})"))?;
        frames.push((name, df));
    }
    output::write_sections(&sink, frames)
}

pub fn root(args: &RootArgs) -> Result<bool> {
    let data = load(&args.input)?;
    let bad = super::warn_bad_input(&data.stats);
    let ev = data.events;
    let format = format_of(&args.output);
    if args.summary {
        write(Answer::one("summary", query::root::summary(ev)), &args.output)?;
    } else if format == Format::Table && args.output.section.is_none() {
        // The table view closes with the summary, shown vertically.
        let rows = query::root::events(ev.clone(), data.sorted).run().context("root events")?;
        let summary = query::root::summary(ev).run().context("root summary")?;
        let mut w = super::open_output(args.output.output.as_deref())?;
        writeln!(w, "root events ({} rows)", rows.height()).map_err(|e| trailscope::error::Error::io("<output>", e))?;
        let sink = args.output.sink(format);
        output::write_table_in(&mut w, &rows, 60, sink.width, sink.zone)?;
        writeln!(w, "\nsummary").map_err(|e| trailscope::error::Error::io("<output>", e))?;
        output::write_vertical_in(&mut w, &summary, sink.zone)?;
        w.flush().map_err(|e| trailscope::error::Error::io("<output>", e))?;
    } else {
        write(Answer::one("root_events", query::root::events(ev, data.sorted)), &args.output)?;
    }
    Ok(bad)
}

use std::io::Write;

pub fn activity(args: &ActivityArgs) -> Result<bool> {
    if args.by == ActivityBy::Group {
        if args.iam.is_empty() {
            return Err(trailscope::error::Error::Usage(
                "--by group needs --iam AUTHZ.json (the groups and their members)".into(),
            ));
        }
        let mut az = trailscope::iam::authz::AuthorizationDetails::default();
        for f in &args.iam {
            az.merge(trailscope::iam::authz::AuthorizationDetails::load(f)?);
        }
        let data = load(&args.input)?;
        let bad = super::warn_bad_input(&data.stats);
        let mut ev = data.events;
        if let Some(filter) = query::principal_filter(&args.principal) {
            ev = ev.filter(filter);
        }
        let answer =
            query::activity::by_group(ev, &query::activity::group_members(&az)).context("activity by group")?;
        write(answer, &args.output)?;
        return Ok(bad);
    }
    if args.by == ActivityBy::Principal && args.principal.is_empty() {
        return activity_folded(args);
    }
    let data = load_columns(&args.input, query::activity::COLUMNS_READ)?;
    let bad = super::warn_bad_input(&data.stats);
    let key = match args.by {
        ActivityBy::Person => Some(query::activity::IdentityCenterKey::Person),
        ActivityBy::PermissionSet => Some(query::activity::IdentityCenterKey::PermissionSet),
        _ => None,
    };
    if let Some(key) = key {
        let mut ev = data.events;
        if let Some(filter) = query::principal_filter(&args.principal) {
            ev = ev.filter(filter);
        }
        let section = if key == query::activity::IdentityCenterKey::Person { "persons" } else { "permission_sets" };
        write(Answer::one(section, query::activity::by_identity_center(ev, key)?), &args.output)?;
        return Ok(bad);
    }
    write(query::activity::answer(data.events, &args.principal)?, &args.output)?;
    Ok(bad)
}

/// `activity` with neither `--by` nor `--principal`: the per-principal rows folded batch by batch as
/// the events are read (`dataset::fold`), without spilling them.
fn activity_folded(args: &ActivityArgs) -> Result<bool> {
    let input = &args.input;
    let filter = input.filter()?;
    let opts = trailscope::ingest::pipeline::ReadOptions {
        columns: Some(query::activity::COLUMNS_READ),
        ..input.read_options()
    };
    let inputs = dataset::discover(&input.inputs, &filter, &input.s3_options())?;
    let mut rows = query::activity::PerPrincipal::default();
    let folded = dataset::fold(inputs, &filter, &opts, input.quiet, |df| rows.add(df))?;
    after_read(&folded.stats, folded.stores.len(), input.quiet);
    let bad = super::warn_bad_input(&folded.stats);
    write(Answer::one("principals", rows.finish()?), &args.output)?;
    Ok(bad)
}

pub fn sessions(args: &SessionsArgs) -> Result<bool> {
    let data = load_columns(&args.input, query::sessions::COLUMNS_READ)?;
    let bad = super::warn_bad_input(&data.stats);
    write(query::sessions::answer(data.events)?, &args.output)?;
    Ok(bad)
}

pub fn failures(args: &FailuresArgs) -> Result<bool> {
    let data = load(&args.input)?;
    let bad = super::warn_bad_input(&data.stats);
    write(query::failures::answer(data.events, args.denied), &args.output)?;
    Ok(bad)
}

pub fn timeline(args: &TimelineArgs) -> Result<bool> {
    let data = load(&args.input)?.time_ordered(args.input.memory_limit)?;
    let bad = super::warn_bad_input(&data.stats);
    let source_ips = args.source_ip.iter().map(|s| s.parse()).collect::<Result<Vec<_>>>()?;
    let pivots = query::timeline::Pivots {
        principals: args.principal.clone(),
        access_keys: args.access_key.clone(),
        source_ips,
        event_names: args.event_name.clone(),
        event_sources: args.event_source.clone(),
        errors_only: args.errors_only,
        read_only: args.read_only,
        writes_only: args.writes_only,
    };
    let lf = match &args.session {
        Some(key) => query::timeline::session(query::timeline::filtered(data.events, &pivots)?, key)?,
        None => query::timeline::rows(data.events, &pivots, data.sorted)?,
    };
    // On a terminal the timeline reads like a log (#11); `--columns` asks for the rows' own columns.
    let sink = args.output.sink(format_of(&args.output));
    let log = sink.format == Format::Table
        && sink.columns.is_none()
        && args.output.section.as_deref().is_none_or(|s| s == "timeline");
    if log {
        output::log::write_log(&sink, lf)?;
    } else {
        write(Answer::one("timeline", lf), &args.output)?;
    }
    Ok(bad)
}

pub fn detect(args: &DetectArgs) -> Result<bool> {
    if args.list {
        let df = query::detect::list().context("listing checks")?;
        write(Answer::one("checks", df.lazy()), &args.output)?;
        return Ok(false);
    }
    let data = load(&args.input)?.time_ordered(args.input.memory_limit)?;
    let bad = super::warn_bad_input(&data.stats);
    let params = args.allowed.params()?;
    // A check that needs a flag is skipped without it; say so when it was asked for by name.
    if !args.check.is_empty() {
        for (id, flag) in query::detect::skipped(&args.check, &params) {
            eprintln!("trailscope: check {id} skipped: it needs {flag}");
        }
    }
    let sink = args.output.sink(format_of(&args.output));
    if args.output.section.as_ref().is_some_and(|s| s != "findings") {
        return Err(trailscope::error::Error::Usage(format!(
            "no section named {:?}",
            args.output.section.as_deref().unwrap_or_default()
        )));
    }
    if output::is_row_format(sink.format) {
        // Findings are written as the pass over the events produces them.
        let schema = query::detect::empty_findings()?.schema().as_ref().clone();
        output::write_batches(&sink, &schema, |each| {
            query::detect::stream_findings(data.events, data.sorted, &args.check, &params, each)
        })?;
    } else {
        let df = query::detect::findings_with(data.events, data.sorted, &args.check, &params)?;
        output::write_sections(&sink, vec![("findings".to_string(), df)])?;
    }
    Ok(bad)
}

pub fn sql(args: &SqlArgs) -> Result<bool> {
    let data = load(&args.input)?;
    let bad = super::warn_bad_input(&data.stats);
    let mut lf = query::sql::plan(data.events, &args.query)?;
    // A bad column name fails here, before any output is written.
    lf.collect_schema().map_err(|e| query::sql::explain_error(&e))?;
    // Rows are written as the query produces them (a `select *` over a year is not held whole).
    write(Answer::one("result", lf), &args.output).map_err(|e| match e {
        trailscope::error::Error::Polars { cause, .. } => query::sql::explain_error(&cause),
        other => other,
    })?;
    Ok(bad)
}
