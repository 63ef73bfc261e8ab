//! `trailscope sql`: ad-hoc Polars SQL over `events` (see `query::sql`).

use clap::Args;

use super::questions::{format_of, load_in_any_order, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use polars::prelude::LazyFrame;
use trailscope::error::{PolarsContext, Result};
use trailscope::output;
use trailscope::query::{self, Answer};

pub static QUESTION: Question<SqlArgs> = Question {
    name: "sql",
    about: "Ad-hoc Polars SQL over a table named `events`",
    formats: super::questions::EVENT_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct SqlArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The query, over a table named `events`.
    #[arg(long)]
    pub query: String,
}

pub fn run(args: &SqlArgs) -> Result<bool> {
    // From raw files, only the columns the query names are filled (and the filters'): a group-by
    // over two columns does not parse and spill every request and response.
    // Out of core, the events are spilled as they come: the query groups or sorts them itself.
    let columns = query::sql::columns_read(&args.query).map(|mut columns| {
        columns.extend(query::PRINCIPAL_FIELDS);
        &*Box::leak(columns.into_boxed_slice())
    });
    let data = load_in_any_order(&args.input, columns)?;
    let bad = super::warn_bad_input(&data.stats);
    let mut lf = query::sql::plan(data.events, &args.query)?;
    // A bad column name fails here, before any output is written.
    lf.collect_schema().map_err(|e| query::sql::explain_error(&e))?;
    // Rows are written as the query produces them (a `select *` over a year is not held whole); a
    // final ORDER BY is done out of core, within a sixteenth of the memory limit.
    let written = match query::sql::final_order(&lf) {
        Some(order) => write_sorted(lf, order, args),
        None => write(Answer::one("result", lf), &args.output),
    };
    written.map_err(|e| match e {
        trailscope::error::Error::Polars { cause, .. } => query::sql::explain_error(&cause),
        other => other,
    })?;
    Ok(bad)
}

/// Write the answer of a query ending with an ORDER BY: its rows sorted by `query::sort`.
fn write_sorted(mut lf: LazyFrame, order: query::sql::FinalOrder, args: &SqlArgs) -> Result<()> {
    if let Some(section) = args.output.section.as_ref().filter(|s| *s != "result") {
        return Err(trailscope::error::Error::Usage(format!("no section named {section:?}")));
    }
    let schema = lf.collect_schema().context("planning the answer")?;
    let sink = args.output.sink(format_of(&args.output));
    let query::sql::FinalOrder { rows, keys, columns } = order;
    let mut sorted = query::sort::SortedRows::new(keys, args.input.memory_limit / 16);
    output::write_batches(&sink, &schema, |each| {
        query::spill::memtrace("sql: start");
        query::stream(rows, |df| sorted.add(df))?;
        query::spill::memtrace(&format!("sql: rows in {} sorted runs", sorted.runs()));
        sorted.finish(|df| each(df.select(columns.iter().cloned()).context("the answer's columns")?))
    })
}
