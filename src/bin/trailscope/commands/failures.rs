//! `trailscope failures`: failed and denied requests (see `query::failures`).

use clap::Args;

use super::questions::{write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
use trailscope::query;

pub static QUESTION: Question<FailuresArgs> = Question {
    name: "failures",
    about: "Failed and denied requests, grouped; console sign-in failures",
    formats: super::questions::TABLE_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct FailuresArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Only authorization failures, classified by why they were denied.
    #[arg(long)]
    pub denied: bool,
}

/// Folded as the files are read (`dataset::fold`): the groups and the console sign-in failures are
/// kept, never the events.
pub fn run(args: &FailuresArgs) -> Result<bool> {
    let mut answer = query::failures::FailuresFold::new(args.denied, args.input.memory_limit);
    let bad = super::questions::fold(&args.input, Some(query::failures::COLUMNS_READ), |df| answer.add(df))?;
    write(answer.finish()?, &args.output)?;
    Ok(bad)
}
