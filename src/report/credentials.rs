//! The users of the IAM credential report: password age, MFA, number of active access keys (the
//! access keys themselves are judged by `query::unused::credential_findings`, as `unused
//! --credential-report` does).

use super::document::{AccessKey, CredentialSummary, CredentialUser, Credentials};
use crate::error::{Error, Result};
use crate::time::format_ms;

/// The password policy age this report holds passwords to (CIS: expire passwords within 90 days).
pub const MAX_PASSWORD_AGE_DAYS: i64 = 90;

fn parse(s: &str) -> Option<i64> {
    crate::ingest::record::parse_time_ms(s)
        .or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()))
}

/// One row per user of the report: user, arn, password_enabled, password_last_changed,
/// password_age_days, password_last_used, password_never_used (enabled, no date of last use), mfa_active,
/// active_keys, findings.
pub fn users(report: &str, as_of_ms: i64) -> Result<Vec<CredentialUser>> {
    let mut lines = report.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let idx = |name: &str| header.iter().position(|h| *h == name);
    let user_i = idx("user").ok_or_else(|| Error::Usage("credential report: no `user` column".into()))?;
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let get = |name: &str| idx(name).and_then(|i| f.get(i)).copied().unwrap_or("");
        let user = f.get(user_i).copied().unwrap_or("");
        let password = get("password_enabled") == "true";
        let changed = parse(get("password_last_changed")).or_else(|| parse(get("user_creation_time")));
        let age = if password { changed.map(|t| super::days_between(t, as_of_ms)) } else { None };
        let mfa = get("mfa_active") == "true";
        let keys = (1..=2).filter(|k| get(&format!("access_key_{k}_active")) == "true").count();
        // AWS writes `no_information` when an enabled password was never used (and `N/A` without one).
        let last_used = parse(get("password_last_used"));
        let never_used = password && last_used.is_none();
        let mut findings = Vec::new();
        if !mfa {
            findings.push(if password || user == "<root_account>" {
                "no MFA, with console access".to_string()
            } else {
                "no MFA".to_string()
            });
        }
        if let Some(a) = age.filter(|a| *a > MAX_PASSWORD_AGE_DAYS) {
            findings.push(format!("password not changed for {a} days (policy: {MAX_PASSWORD_AGE_DAYS})"));
        }
        if never_used {
            findings.push("password enabled, never used".into());
        }
        if keys == 2 {
            findings.push("two active access keys".into());
        }
        out.push(CredentialUser {
            user: user.to_string(),
            arn: get("arn").to_string(),
            password_enabled: password,
            password_last_changed: if password { changed.map(format_ms) } else { None },
            password_age_days: age,
            password_last_used: last_used.map(format_ms),
            password_never_used: never_used,
            mfa_active: mfa,
            active_keys: keys as u64,
            findings: findings.join("; "),
        });
    }
    Ok(out)
}

/// The credentials section: the access keys' findings, the users, and counts of each kind.
pub fn section(path: &str, keys: Vec<AccessKey>, users: Vec<CredentialUser>, stale_days: i64) -> Credentials {
    let key_count = |needle: &str| keys.iter().filter(|k| k.finding.starts_with(needle)).count() as u64;
    let user_count = |f: &dyn Fn(&CredentialUser) -> bool| users.iter().filter(|u| f(u)).count() as u64;
    let summary = CredentialSummary {
        access_keys_not_rotated_90_days: key_count("not rotated"),
        access_keys_never_used: key_count("active, never used"),
        access_keys_unused: key_count("unused for"),
        users_with_two_keys: user_count(&|u| u.active_keys == 2),
        passwords_never_used: user_count(&|u| u.password_never_used),
        passwords_older_than_90_days: user_count(&|u| u.password_age_days.is_some_and(|a| a > MAX_PASSWORD_AGE_DAYS)),
        users_without_mfa: user_count(&|u| !u.mfa_active),
    };
    Credentials { file: path.to_string(), stale_days, summary, access_keys: keys, users }
}
