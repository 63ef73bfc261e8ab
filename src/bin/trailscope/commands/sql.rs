//! `trailscope sql`: ad-hoc Polars SQL over `events` (see `query::sql`).

use clap::Args;

use super::questions::{load_in_any_order, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
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
    // Rows are written as the query produces them (a `select *` over a year is not held whole).
    write(Answer::one("result", lf), &args.output).map_err(|e| match e {
        trailscope::error::Error::Polars { cause, .. } => query::sql::explain_error(&cause),
        other => other,
    })?;
    Ok(bad)
}
