//! `trailscope root`: root-account usage (see `query::root`).

use std::io::Write;

use clap::Args;
use polars::prelude::IntoLazy;

use super::questions::{format_of, load_selecting, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::{PolarsContext, Result};
use trailscope::output::{self, Format};
use trailscope::query::{self, Answer, Run};

pub static QUESTION: Question<RootArgs> = Question {
    name: "root",
    about: "Root-account usage (CIS semantics): every root event and a summary",
    formats: super::questions::EVENT_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct RootArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Print only the summary, as one row.
    #[arg(long)]
    pub summary: bool,
}

pub fn run(args: &RootArgs) -> Result<bool> {
    if args.summary {
        // Folded as the files are read: counts and the distinct source IPs, never the events.
        let mut summary = query::root::SummaryFold::default();
        let bad = super::questions::fold(&args.input, Some(query::root::SUMMARY_COLUMNS_READ), |df| summary.add(df))?;
        write(Answer::one("summary", summary.finish()?.lazy()), &args.output)?;
        return Ok(bad);
    }
    // Only the columns the rows and the summary read are filled from raw files (the others, the
    // JSON blobs above all, were most of what a large input spilled to put it in time order), a large
    // input spills only its root events (after de-duplicating every event), and only the root
    // events of a large store, with those columns, are held or spilled in time order.
    let listed: &'static [&'static str] = Box::leak(query::root::columns_listed().into_boxed_slice());
    let root = Some(query::root::is_root_usage());
    let data = load_selecting(&args.input, listed, root.clone())?.time_ordered(args.input.memory_limit, root, Some(listed))?;
    let bad = super::warn_bad_input(&data.stats);
    let ev = data.events;
    let format = format_of(&args.output);
    if format == Format::Table && args.output.section.is_none() {
        // The table view closes with the summary, shown vertically; the events are written as
        // they come (`output::Table`), never held.
        let mut rows = query::root::events(ev.clone(), data.sorted);
        let schema = rows.collect_schema().context("root events")?;
        let mut w = super::open_output(args.output.output.as_deref())?;
        let sink = args.output.sink(format);
        let mut table = output::Table::new(&polars::prelude::DataFrame::empty_with_schema(&schema), output::TABLE_CELL_CHARS, sink.width, sink.zone)
            .with_title("root_events");
        query::stream(rows, |df| table.add(&mut w, &df))?;
        table.finish(&mut w)?;
        let summary = query::root::summary(ev).run().context("root summary")?;
        writeln!(w, "\nsummary").map_err(|e| trailscope::error::Error::io("<output>", e))?;
        output::write_vertical_in(&mut w, &summary, sink.zone)?;
        w.flush().map_err(|e| trailscope::error::Error::io("<output>", e))?;
    } else {
        write(Answer::one("root_events", query::root::events(ev, data.sorted)), &args.output)?;
    }
    Ok(bad)
}
