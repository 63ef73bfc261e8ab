//! `trailscope sessions`: temporary credentials, requested versus used (see `query::sessions`).

use clap::Args;

use super::questions::{write, Question};
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
    // Folded as the files are read: the sessions and temporary keys seen, never the events.
    let mut sessions = query::sessions::SessionsFold::default();
    let bad = super::questions::fold(&args.input, Some(query::sessions::COLUMNS_READ), |df| sessions.add(df))?;
    write(sessions.finish()?, &args.output)?;
    Ok(bad)
}
