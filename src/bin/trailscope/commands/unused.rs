//! `trailscope unused`: granted versus used IAM actions (see `query::unused`).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use polars::prelude::*;

use super::questions::{load, write, Question};
use crate::cli::{InputArgs, OutputArgs};
use trailscope::error::{Error, Result};
use trailscope::iam::authz::AuthorizationDetails;
use trailscope::query::unused::{self, LeastPrivilege};
use trailscope::query::Answer;
use trailscope::report::document::CredentialUser;

pub static QUESTION: Question<UnusedArgs> = Question {
    name: "unused",
    about: "IAM permissions granted (per --iam snapshot) but not used in the events",
    formats: super::questions::TABLE_FORMATS,
    run,
};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusedBy {
    PermissionSet,
}

#[derive(Args, Debug)]
pub struct UnusedArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Output of `aws iam get-account-authorization-details` (one per account; repeatable).
    #[arg(long, value_name = "AUTHZ.json", required_unless_present = "used")]
    pub iam: Vec<PathBuf>,
    /// Only the used side: per principal and action, the successful calls (no snapshot needed; the
    /// same rows as the SQL pack's used.sql).
    #[arg(long, conflicts_with_all = ["actions", "policy", "credential_report"])]
    pub used: bool,
    /// One row per (principal, granted action) instead of one per principal.
    #[arg(long)]
    pub actions: bool,
    /// One row per role of the snapshot: its last use in the events, the snapshot's RoleLastUsed, and
    /// whether it was used in the window.
    #[arg(long, conflicts_with_all = ["actions", "policy", "used"])]
    pub roles: bool,
    /// Print a least-privilege policy for this principal (ARN, name or id) built from what it used
    /// (a JSON list of policies when it exceeds IAM's 6,144-character managed-policy limit).
    #[arg(long, value_name = "PRINCIPAL")]
    pub policy: Option<String>,
    /// Only this principal (ARN, name or id; * and ? wildcards), in the per-principal and --actions
    /// rows.
    #[arg(long, value_name = "PRINCIPAL", conflicts_with = "policy")]
    pub principal: Option<String>,
    /// permission-set: IAM Identity Center permission sets instead of principals (their
    /// AWSReservedSSO_<PermissionSet>_<suffix> roles merged across accounts); --policy, --principal
    /// and --actions then name permission sets.
    #[arg(long, value_name = "KEY", conflicts_with_all = ["roles", "used"])]
    pub by: Option<UnusedBy>,
    /// The IAM credential report (CSV): adds the section access_keys with stale and old keys.
    #[arg(long, value_name = "FILE")]
    pub credential_report: Option<PathBuf>,
    /// An access key unused for this many days is stale.
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    pub stale_days: i64,
    /// Judge key ages as of this time (default: now).
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
}

/// The credential report's users (MFA, password age, two active keys) as a table: the same rows as
/// the report's Credentials section.
fn users_frame(users: &[CredentialUser]) -> Result<DataFrame> {
    let text =
        |f: fn(&CredentialUser) -> Option<&str>| users.iter().map(|u| f(u).map(str::to_string)).collect::<Vec<_>>();
    DataFrame::new(
        users.len(),
        vec![
            Column::new("user".into(), text(|u| Some(&u.user))),
            Column::new("arn".into(), text(|u| Some(&u.arn))),
            Column::new("password_enabled".into(), users.iter().map(|u| Some(u.password_enabled)).collect::<Vec<_>>()),
            Column::new("password_last_changed".into(), text(|u| u.password_last_changed.as_deref())),
            Column::new("password_age_days".into(), users.iter().map(|u| u.password_age_days).collect::<Vec<_>>()),
            Column::new("mfa_active".into(), users.iter().map(|u| Some(u.mfa_active)).collect::<Vec<_>>()),
            Column::new(
                "active_keys".into(),
                users.iter().map(|u| i64::try_from(u.active_keys).ok()).collect::<Vec<_>>(),
            ),
            Column::new("findings".into(), text(|u| Some(&u.findings))),
        ],
    )
    .map_err(|cause| Error::Polars { context: "credential report users".into(), cause })
}

pub fn run(args: &UnusedArgs) -> Result<bool> {
    if args.used {
        let data = load(&args.input)?;
        let bad = super::warn_bad_input(&data.stats);
        write(Answer::one("used", unused::used_actions(data.events)?.lazy()), &args.output)?;
        return Ok(bad);
    }
    let mut az = AuthorizationDetails::default();
    for f in &args.iam {
        az.merge(AuthorizationDetails::load(f)?);
    }
    // Without --policy the events are folded as the files are read (who called what, counted),
    // never held; a policy also scopes resources, which reads the events a second time.
    let (data, bad, mut analysis) = if args.policy.is_some() {
        let data = load(&args.input)?;
        let bad = super::warn_bad_input(&data.stats);
        let analysis = unused::analyze(&az, data.events.clone())?;
        (Some(data), bad, analysis)
    } else {
        let mut usage = unused::UsageFold::default();
        let bad = super::questions::fold(&args.input, Some(unused::COLUMNS_READ), |df| usage.add(df))?;
        (None, bad, usage.analyze(&az)?)
    };
    let by_set = args.by.is_some();
    if by_set {
        if let Some(data) = &data {
            // The resources of every permission set's roles, merged per set below.
            analysis.scope_resources(data.events.clone(), None)?;
        }
        analysis = analysis.by_permission_set()?;
    }
    if let Some(who) = &args.principal {
        analysis.only(who)?;
    }
    if let (Some(who), Some(data)) = (&args.policy, data) {
        if !by_set {
            analysis.scope_resources(data.events, Some(who))?;
        }
        let doc = match analysis.least_privilege(who)? {
            LeastPrivilege::Policy(p) => p,
            LeastPrivilege::Split(list) => {
                eprintln!(
                    "trailscope: {who}'s policy exceeds IAM's {} characters for a managed policy: split into {} policies \
                     (a JSON list), each within the limit",
                    unused::MANAGED_POLICY_MAX_CHARS,
                    list.len()
                );
                serde_json::Value::Array(list)
            }
            LeastPrivilege::NothingUsed(note) => {
                eprintln!("trailscope: {who} used none of its permissions in these events: no policy to write");
                note
            }
        };
        let mut w = super::open_output(args.output.output.as_deref())?;
        serde_json::to_writer_pretty(&mut w, &doc).map_err(Error::json_write)?;
        writeln!(w).and_then(|()| w.flush()).map_err(|e| Error::io("<output>", e))?;
        return Ok(bad);
    }
    let main = if args.roles {
        ("roles", analysis.roles()?)
    } else if args.actions {
        ("actions", analysis.actions()?)
    } else if by_set {
        let mut df = analysis.summary()?;
        let accounts = analysis.accounts_column(&df)?;
        df.insert_column(3, accounts).map_err(|cause| Error::Polars { context: "accounts".into(), cause })?;
        ("permission_sets", df)
    } else {
        ("principals", analysis.summary()?)
    };
    let mut answer = Answer::one(main.0, main.1.lazy());
    if let Some(path) = &args.credential_report {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let as_of = match &args.as_of {
            Some(t) => trailscope::time::parse_instant(t)?,
            None => chrono::Utc::now().timestamp_millis(),
        };
        answer = answer.with("access_keys", unused::credential_findings(&text, args.stale_days, as_of)?.lazy());
        answer = answer.with("users", users_frame(&trailscope::report::credentials::users(&text, as_of)?)?.lazy());
    }
    write(answer, &args.output)?;
    Ok(bad)
}
