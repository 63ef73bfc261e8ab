//! `trailscope failures`: failed and denied requests (see `query::failures`).

use clap::Args;

use super::questions::{load, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
use trailscope::query;

pub static QUESTION: Question<FailuresArgs> =
    Question { name: "failures", about: "Failed and denied requests, grouped; console sign-in failures", run };

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

pub fn run(args: &FailuresArgs) -> Result<bool> {
    let data = load(&args.input)?;
    let bad = super::warn_bad_input(&data.stats);
    write(query::failures::answer(data.events, args.denied), &args.output)?;
    Ok(bad)
}
