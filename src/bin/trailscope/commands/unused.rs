//! `trailscope unused`: granted versus used IAM actions (see `query::unused`).

use std::io::Write;

use polars::prelude::*;

use super::questions::{load, write};
use crate::cli::UnusedArgs;
use trailscope::error::{Error, Result};
use trailscope::iam::authz::AuthorizationDetails;
use trailscope::query::unused::{self, LeastPrivilege};
use trailscope::query::Answer;

/// The credential report's users (MFA, password age, two active keys) as a table: the same rows as
/// the report's Credentials section.
fn users_frame(users: &[serde_json::Value]) -> Result<DataFrame> {
    let text = |k: &str| users.iter().map(|u| u[k].as_str().map(str::to_string)).collect::<Vec<_>>();
    let flag = |k: &str| users.iter().map(|u| u[k].as_bool()).collect::<Vec<_>>();
    let number = |k: &str| users.iter().map(|u| u[k].as_i64()).collect::<Vec<_>>();
    DataFrame::new(
        users.len(),
        vec![
            Column::new("user".into(), text("user")),
            Column::new("arn".into(), text("arn")),
            Column::new("password_enabled".into(), flag("password_enabled")),
            Column::new("password_last_changed".into(), text("password_last_changed")),
            Column::new("password_age_days".into(), number("password_age_days")),
            Column::new("mfa_active".into(), flag("mfa_active")),
            Column::new("active_keys".into(), number("active_keys")),
            Column::new("findings".into(), text("findings")),
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
    let data = load(&args.input)?;
    let bad = super::warn_bad_input(&data.stats);
    let mut analysis = unused::analyze(&az, data.events.clone())?;
    let by_set = args.by.is_some();
    if by_set {
        if args.policy.is_some() {
            // The resources of every permission set's roles, merged per set below.
            analysis.scope_resources(data.events.clone(), None)?;
        }
        analysis = analysis.by_permission_set()?;
    }
    if let Some(who) = &args.principal {
        analysis.only(who)?;
    }
    if let Some(who) = &args.policy {
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
