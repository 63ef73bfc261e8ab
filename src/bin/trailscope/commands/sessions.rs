//! `trailscope sessions`: temporary credentials, requested versus used (see `query::sessions`).

use clap::Args;

use super::questions::{load_columns, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::Result;
use trailscope::query;

pub static QUESTION: Question<SessionsArgs> = Question {
    name: "sessions",
    about: "Temporary credentials: session durations requested (DurationSeconds) versus really used",
    formats: super::questions::TABLE_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: &SessionsArgs) -> Result<bool> {
    let data = load_columns(&args.input, query::sessions::COLUMNS_READ)?;
    let bad = super::warn_bad_input(&data.stats);
    write(query::sessions::answer(data.events)?, &args.output)?;
    Ok(bad)
}
