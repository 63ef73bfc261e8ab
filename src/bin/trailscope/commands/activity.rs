//! `trailscope activity`: who did what (see `query::activity`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::questions::{load, load_columns, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::{PolarsContext, Result};
use trailscope::query::{self, Answer};

pub static QUESTION: Question<ActivityArgs> = Question {
    name: "activity",
    about: "Who did what: one row per principal; --principal adds breakdowns",
    formats: super::questions::TABLE_FORMATS,
    run,
};

#[derive(Args, Debug)]
pub struct ActivityArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Narrow to a principal (ARN, user name, access key id, or a glob); repeatable.
    #[arg(long, value_name = "P")]
    pub principal: Vec<String>,
    /// One row per principal, per IAM group of the --iam snapshot (sections groups, members, by_action),
    /// or per IAM Identity Center person or permission set.
    #[arg(long, value_enum, default_value_t = ActivityBy::Principal)]
    pub by: ActivityBy,
    /// IAM snapshot(s) (`aws iam get-account-authorization-details`), for --by group; repeatable.
    #[arg(long, value_name = "AUTHZ.json")]
    pub iam: Vec<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityBy {
    Principal,
    Group,
    /// IAM Identity Center: per person (the role session name of AWSReservedSSO_* sessions).
    Person,
    /// IAM Identity Center: per permission set (parsed from the AWSReservedSSO_<set>_<suffix> role).
    PermissionSet,
}

pub fn run(args: &ActivityArgs) -> Result<bool> {
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
    let mut rows = query::activity::PerPrincipal::default();
    let bad = super::questions::fold(&args.input, Some(query::activity::FOLDED_COLUMNS_READ), |df| rows.add(df))?;
    write(Answer::one("principals", rows.finish()?), &args.output)?;
    Ok(bad)
}
