//! `trailscope detect`: the built-in checks (see `query::detect`).

use clap::Args;
use polars::prelude::*;

use super::questions::{fold, format_of, write, Question};
use crate::cli::{AllowedArgs, InputArgs, OutputArgs};
use trailscope::error::{PolarsContext, Result};
use trailscope::query::dataset;
use trailscope::output;
use trailscope::query::{self, Answer};

pub static QUESTION: Question<DetectArgs> = Question {
    name: "detect",
    about: "Built-in checks: CIS AWS Foundations monitoring controls and more",
    formats: super::questions::EVENT_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct DetectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Run only this check (id, e.g. CIS-4.3); repeatable.
    #[arg(long, value_name = "ID")]
    pub check: Vec<String>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub allowed: AllowedArgs,
}

pub fn run(args: &DetectArgs) -> Result<bool> {
    if args.list {
        let df = query::detect::list().context("listing checks")?;
        write(Answer::one("checks", df.lazy()), &args.output)?;
        return Ok(false);
    }
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
    // The checks run on each batch as the files are read (never spilled, in any order); the
    // findings come out in time order at the end.
    let mut run = query::detect::Detection::new(&args.check, &params, args.input.memory_limit)?;
    // Only the columns the checks read are filled (from raw files) or decoded (from a store).
    let columns: Option<&'static [&'static str]> = run.columns_read().map(|c| &*Box::leak(c.into_boxed_slice()));
    query::spill::memtrace("detect: start");
    if run.follows_denials() {
        if let Some(principals) = denied_principals(&args.input)? {
            run.only_principals(principals);
            query::spill::memtrace("detect: denials counted");
        }
    }
    let bad = fold(&args.input, columns, |df| run.add(df))?;
    query::spill::memtrace("detect: events checked");
    let schema = query::detect::empty_findings()?.schema().as_ref().clone();
    output::write_batches(&sink, &schema, |each| run.finish(each))?;
    query::spill::memtrace("detect: findings written");
    Ok(bad)
}

/// When the input is one store, the principals denied often enough for the sequence check to
/// follow (`query::detect::Denials`: a first pass over the rows with an error code, the same events
/// and filters as the checks'); `None` otherwise (a second read of raw files would cost more than it
/// spares, and stores mixed with files or other stores are read through a spill).
fn denied_principals(input: &InputArgs) -> Result<Option<hashbrown::HashSet<String>>> {
    let filter = input.filter()?;
    let inputs = dataset::discover(&input.inputs, &filter, &input.s3_options())?;
    if inputs.stores.len() != 1 || !inputs.files.is_empty() {
        return Ok(None);
    }
    let data = dataset::from_inputs(inputs, &filter, &input.read_options(), true)?;
    let mut denials = query::detect::Denials::default();
    query::stream(query::detect::Denials::of(data.events), |df| denials.add(df))?;
    Ok(Some(denials.principals()))
}
