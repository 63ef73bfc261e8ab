//! `trailscope sql`: ad-hoc Polars SQL over `events` (see `query::sql`).

use clap::Args;

use super::questions::{load, write, Question};
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
