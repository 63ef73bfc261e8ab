//! The report as a typed document: `build` fills a [`Report`], `--format json` serializes it, and
//! `html.rs` and `actions.rs` read its fields (a misspelt field is a compile error, not a blank
//! cell). Field order is the JSON's key order; `Option` fields are `null` when absent, except the
//! IAM-snapshot parts of [`Principals`], which are left out without `--iam`.
//!
//! The rows the questions answer as Polars frames become these row structs through their JSON
//! ([`typed_rows`]), which refuses a frame whose columns are not the struct's: a question that
//! changes its columns changes this file too.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use super::actions::{ActionItem, Severity};
use crate::error::{Error, Result};
use crate::ingest::pipeline::Rejected;
use crate::query::scope::Count;
use crate::query::unused::LeastPrivilege;
use crate::source::Skipped;

/// The whole report, in section order (`super::SECTIONS`) after its header.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub title: String,
    pub generated_at: String,
    pub as_of: String,
    /// The command line's INPUTs.
    pub inputs: Vec<String>,
    pub filters: Filters,
    pub scope: Scope,
    pub root: Root,
    pub principals: Principals,
    pub mfa: Mfa,
    pub failures: Failures,
    /// `null` without `--iam`.
    pub unused: Option<Unused>,
    /// `null` without `--credential-report`.
    pub credentials: Option<Credentials>,
    pub sessions: Sessions,
    pub conditions: Conditions,
    pub actions: Actions,
}

/// The shared input filters as given (for the record).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub account: Vec<String>,
    pub region: Vec<String>,
}

/// The size of the time buckets of the report's charts, from the window's span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    #[default]
    Day,
    Month,
}

impl Bucket {
    /// Its name in the JSON (`hour`, `day`, `month`).
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Month => "month",
        }
    }
}

/// Events per time bucket for each named subset, over every bucket of the window (zeros included).
#[derive(Debug, Default, Serialize)]
pub struct OverTime {
    pub bucket: Bucket,
    /// The subsets' names, the keys of each row's counts.
    pub series: Vec<&'static str>,
    pub rows: Vec<BucketCounts>,
}

/// One bucket: its label and a count per series (written `{"bucket": ..., "<series>": n, ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCounts {
    pub bucket: String,
    pub counts: Vec<(&'static str, u64)>,
}

impl Serialize for BucketCounts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1 + self.counts.len()))?;
        m.serialize_entry("bucket", &self.bucket)?;
        for (name, n) in &self.counts {
            m.serialize_entry(name, n)?;
        }
        m.end()
    }
}

// ---- scope

#[derive(Debug, Default, Serialize)]
pub struct Scope {
    pub summary: ScopeSummary,
    pub by_account: Vec<Count>,
    pub by_region: Vec<Count>,
    pub over_time: OverTime,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Skipped>,
    pub rejected: Vec<Rejected>,
    /// One `verify` per INPUT directory holding digest files.
    pub integrity: Vec<Integrity>,
}

/// `scan`'s accounting.
#[derive(Debug, Default, Serialize)]
pub struct ScopeSummary {
    pub files: u64,
    pub files_skipped: u64,
    pub files_failed: u64,
    pub records: u64,
    pub records_rejected: u64,
    pub records_without_event_id: u64,
    pub events: u64,
    pub duplicates: u64,
    pub first_event_time: Option<String>,
    pub last_event_time: Option<String>,
    pub accounts: u64,
    pub regions: u64,
    pub bytes_read: u64,
    pub bytes_decoded: u64,
}

/// `verify`'s report on one INPUT, and that INPUT.
#[derive(Debug, Default, Serialize)]
pub struct Integrity {
    #[serde(flatten)]
    pub report: crate::verify::Report,
    pub input: String,
}

// ---- root

#[derive(Debug, Default, Serialize)]
pub struct Root {
    /// `root --summary`'s row.
    pub summary: Option<RootSummary>,
    pub over_time: OverTime,
    /// `root`'s rows: the first `--max-rows` of them.
    pub events: Vec<RootEvent>,
    /// How many root events there are (`events` may list fewer).
    pub events_total: u64,
    /// Every `detect` check with its number of findings.
    pub checks: Vec<CheckCount>,
    /// The findings that are action items (`actions::FINDING_CHECKS`), as `detect` gives them: the
    /// first `--max-rows` of them.
    pub findings: Vec<DetectFinding>,
    /// How many findings are action items (`findings` may list fewer).
    pub findings_total: u64,
    /// The accounts of every root event and of the root console sign-ins without MFA (the action
    /// items name them; the listed events may be only the first of them).
    #[serde(skip)]
    pub accounts: RootAccounts,
    /// The findings to act on per check, principal, severity and outcome, over all of them (the
    /// action items count them), in that order.
    #[serde(skip)]
    pub finding_groups: Vec<FindingGroup>,
}

/// The recipient accounts of root's events (see `Root::accounts`).
#[derive(Debug, Clone, Default)]
pub struct RootAccounts {
    pub used: Vec<String>,
    pub signed_in_without_mfa: Vec<String>,
}

/// The findings of one check, principal, severity and outcome (see `Root::finding_groups`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingGroup {
    pub check_id: String,
    pub principal: Option<String>,
    pub severity: String,
    pub outcome: String,
    pub title: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootSummary {
    pub events: u64,
    pub console_logins: u64,
    pub console_login_success: u64,
    pub console_login_failure: u64,
    pub console_login_success_without_mfa: u64,
    pub access_key_events: u64,
    pub akia_key_events: u64,
    pub asia_key_events: u64,
    pub source_ips: u64,
    pub first_use: Option<String>,
    pub last_use: Option<String>,
}

/// A row of `root` (`query::root::COLUMNS`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootEvent {
    pub event_time: Option<String>,
    pub event_id: Option<String>,
    pub recipient_account_id: Option<String>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub access_key_id: Option<String>,
    pub console_login: Option<String>,
    pub mfa_used: Option<String>,
    pub session_mfa: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckCount {
    pub check_id: &'static str,
    pub title: &'static str,
    pub severity: &'static str,
    pub findings: u64,
    /// Not run: it needs a flag that was not given.
    pub skipped: bool,
}

/// A row of `detect` (`query::detect::COLUMNS`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectFinding {
    pub check_id: String,
    pub title: String,
    pub severity: String,
    pub event_time: Option<String>,
    pub principal: Option<String>,
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    pub event_id: Option<String>,
    pub error_code: Option<String>,
    /// `succeeded`, `failed` or `denied`.
    pub outcome: String,
}

// ---- principals

#[derive(Debug, Default, Serialize)]
pub struct Principals {
    /// `activity`'s rows.
    pub activity: Vec<ActivityRow>,
    /// With `--iam`: `unused` rows with no events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dormant: Option<Vec<UnusedRow>>,
    /// With `--iam`: `activity --by group`'s sections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_members: Option<Vec<GroupMemberRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by_action: Option<Vec<GroupActionRow>>,
}

/// A row of `activity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityRow {
    pub principal: Option<String>,
    pub principal_type: Option<String>,
    pub account_id: Option<String>,
    pub events: u64,
    pub errors: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub services: u64,
    pub actions: u64,
    pub source_ips: u64,
    pub regions: u64,
    pub access_keys: u64,
    pub user_agents: u64,
    pub top_services: Option<String>,
}

/// A row of `activity --by group`'s `groups`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRow {
    pub group: Option<String>,
    pub group_arn: Option<String>,
    pub members: u64,
    pub active_members: u64,
    pub events: u64,
    pub errors: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub services: u64,
    pub actions: u64,
    pub top_services: Option<String>,
    pub top_actions: Option<String>,
}

/// A row of `activity --by group`'s `members`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMemberRow {
    pub group: Option<String>,
    pub group_arn: Option<String>,
    pub member: Option<String>,
    pub user_name: Option<String>,
    pub events: u64,
    pub errors: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub services: u64,
    pub actions: u64,
    pub top_services: Option<String>,
}

/// A row of `activity --by group`'s `by_action`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupActionRow {
    pub group: Option<String>,
    pub group_arn: Option<String>,
    pub service: Option<String>,
    pub event_name: Option<String>,
    pub events: u64,
    pub errors: u64,
    pub members: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

// ---- MFA posture

#[derive(Debug, Default, Serialize)]
pub struct Mfa {
    pub principals: Vec<MfaRow>,
    /// The CIS-4.2 findings: the first `--max-rows` of them.
    pub console_sign_ins: Vec<MfaSignIn>,
    /// How many CIS-4.2 findings there are (`console_sign_ins` may list fewer).
    pub console_sign_ins_total: u64,
}

/// CIS-4.2 and TS-NO-MFA-SESSION findings of one principal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRow {
    pub principal: Option<String>,
    pub console_sign_ins_without_mfa: u64,
    pub calls_without_mfa: u64,
    pub source_ips: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub total: u64,
}

/// A CIS-4.2 finding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaSignIn {
    pub kind: String,
    pub principal: Option<String>,
    pub event_time: Option<String>,
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
}

// ---- failures

#[derive(Debug, Default, Serialize)]
pub struct Failures {
    pub over_time: OverTime,
    /// `failures`' groups.
    pub failures: Vec<FailureGroup>,
    /// `failures --denied`'s groups.
    pub denied: Vec<DeniedGroup>,
    /// `failures`' failed console sign-ins: the first `--max-rows` of them.
    pub console_sign_in_failures: Vec<ConsoleFailure>,
    /// How many failed console sign-ins there are (`console_sign_in_failures` may list fewer).
    pub console_sign_in_failures_total: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureGroup {
    pub principal: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub error_code: Option<String>,
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub sample_error_message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedGroup {
    pub principal: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub error_code: Option<String>,
    pub denial: Option<String>,
    pub policy_type: Option<String>,
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub sample_error_message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFailure {
    pub event_time: Option<String>,
    pub event_id: Option<String>,
    pub recipient_account_id: Option<String>,
    pub user_name: Option<String>,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_message: Option<String>,
    pub mfa_used: Option<String>,
}

// ---- unused permissions

#[derive(Debug, Default, Serialize)]
pub struct Unused {
    /// `unused`'s rows.
    pub principals: Vec<UnusedRow>,
    pub policies: Vec<PolicyOf>,
}

/// A row of `unused` (`query::unused::Analysis::summary`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnusedRow {
    pub principal: String,
    pub principal_type: String,
    pub name: String,
    pub events: u64,
    pub last_activity: Option<String>,
    pub granted: u64,
    pub used: u64,
    pub unused: u64,
    pub not_logged: u64,
    pub attempted: u64,
    /// unused / (used + unused); `null` when neither.
    pub unused_share: Option<f64>,
    pub warnings: String,
    pub unused_risky: u64,
    pub remove_first: Option<String>,
}

/// A principal's least-privilege policy (`unused --policy`).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyOf {
    pub principal: String,
    pub name: String,
    pub policy: LeastPrivilege,
}

// ---- credentials

#[derive(Debug, Serialize)]
pub struct Credentials {
    /// The credential report's path.
    pub file: String,
    pub stale_days: i64,
    pub summary: CredentialSummary,
    /// `unused --credential-report`'s `access_keys`.
    pub access_keys: Vec<AccessKey>,
    pub users: Vec<CredentialUser>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CredentialSummary {
    pub access_keys_not_rotated_90_days: u64,
    pub access_keys_never_used: u64,
    pub access_keys_unused: u64,
    pub users_with_two_keys: u64,
    pub passwords_never_used: u64,
    pub passwords_older_than_90_days: u64,
    pub users_without_mfa: u64,
}

/// A row of `query::unused::credential_findings`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub user: String,
    pub arn: String,
    pub key: String,
    pub last_rotated: Option<String>,
    pub last_used: Option<String>,
    pub finding: String,
}

/// A user of the credential report (`credentials::users`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CredentialUser {
    pub user: String,
    pub arn: String,
    pub password_enabled: bool,
    pub password_last_changed: Option<String>,
    pub password_age_days: Option<i64>,
    pub password_last_used: Option<String>,
    /// Enabled, with no date of last use.
    pub password_never_used: bool,
    pub mfa_active: bool,
    pub active_keys: u64,
    pub findings: String,
}

// ---- sessions

#[derive(Debug, Default, Serialize)]
pub struct Sessions {
    /// TS-SSM-SESSION's events.
    pub events: u64,
    /// The sessions in the order their first event comes: the first `--max-rows` of them.
    pub sessions: Vec<Session>,
    /// How many sessions there are (`sessions` may list fewer).
    pub sessions_total: u64,
    pub by_target: Vec<SessionTarget>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Session {
    pub session_id: String,
    pub principal: String,
    pub target: String,
    pub source_ip: Option<String>,
    pub started: Option<String>,
    pub resumed: u64,
    pub terminated: Option<String>,
    pub failed_calls: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionTarget {
    pub principal: String,
    pub target: String,
    pub starts: u64,
    pub resumes: u64,
    pub terminates: u64,
    pub events: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

// ---- policy conditions

#[derive(Debug, Default, Serialize)]
pub struct Conditions {
    pub allowed_cidrs: Vec<String>,
    pub allowed_hours: Vec<String>,
    pub network_checked: bool,
    pub hours_checked: bool,
    pub principals: Vec<ConditionRow>,
}

/// TS-OUTSIDE-NETWORK and TS-OUTSIDE-HOURS findings of one principal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionRow {
    pub principal: Option<String>,
    pub outside_network: u64,
    pub outside_ips: u64,
    pub sample_ips: Option<String>,
    pub outside_hours: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub total: u64,
}

// ---- action items

#[derive(Debug, Default, Serialize)]
pub struct Actions {
    pub counts: SeverityCounts,
    pub items: Vec<ActionItem>,
}

/// Items per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl SeverityCounts {
    pub fn of(items: &[ActionItem]) -> Self {
        let n = |sev: Severity| items.iter().filter(|i| i.severity == sev).count() as u64;
        SeverityCounts {
            critical: n(Severity::Critical),
            high: n(Severity::High),
            medium: n(Severity::Medium),
            low: n(Severity::Low),
        }
    }

    pub fn get(&self, sev: Severity) -> u64 {
        match sev {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// A question's answer that is not of the shape the report holds (a bug: the question changed, the
/// report did not).
pub fn shape_error(what: &str, msg: String) -> Error {
    Error::Json { context: format!("report: the rows of {what}"), cause: serde::de::Error::custom(msg) }
}

/// The rows of `df` as `R`s, read through their JSON (`output::rows_json`: the numbers, texts and
/// times the commands write). A frame whose columns are not `R`'s fields, in `R`'s order, is an
/// error naming both, so that a question's new column is not silently left out of the report.
pub fn typed_rows<R: DeserializeOwned + Serialize>(df: &polars::prelude::DataFrame, what: &str) -> Result<Vec<R>> {
    let bad = |cause: serde_json::Error| Error::Json { context: format!("report: the rows of {what}"), cause };
    let mut out = Vec::with_capacity(df.height());
    for (i, row) in crate::output::rows_json(df)?.into_iter().enumerate() {
        let typed: R = serde_json::from_value(serde_json::Value::Object(row)).map_err(bad)?;
        if i == 0 {
            let fields: Vec<String> = match serde_json::to_value(&typed).map_err(bad)? {
                serde_json::Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
            if fields != columns {
                let msg = format!("columns [{}], the report's rows have [{}]", columns.join(", "), fields.join(", "));
                return Err(shape_error(what, msg));
            }
        }
        out.push(typed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn rows_must_have_the_frames_columns() {
        let df = df!("kind" => ["k"], "principal" => [Some("p")], "event_time" => [None::<&str>],
                     "event_name" => ["e"], "source_ip" => [None::<&str>])
        .unwrap();
        let rows: Vec<MfaSignIn> = typed_rows(&df, "sign-ins").unwrap();
        assert_eq!(rows[0].principal.as_deref(), Some("p"));
        assert_eq!(
            serde_json::to_string(&rows[0]).unwrap(),
            r#"{"kind":"k","principal":"p","event_time":null,"event_name":"e","source_ip":null}"#
        );
        // A column more, a column less, or the columns in another order: refused.
        let more = df.clone().hstack(&[Column::new("extra".into(), [1u32])]).unwrap();
        assert!(typed_rows::<MfaSignIn>(&more, "sign-ins").is_err());
        let less = df.drop("source_ip").unwrap();
        assert!(typed_rows::<MfaSignIn>(&less, "sign-ins").is_err());
        let moved = df.select(["principal", "kind", "event_time", "event_name", "source_ip"]).unwrap();
        assert!(typed_rows::<MfaSignIn>(&moved, "sign-ins").is_err());
    }

    #[test]
    fn bucket_names_are_their_json() {
        for b in [Bucket::Hour, Bucket::Day, Bucket::Month] {
            assert_eq!(serde_json::to_value(b).unwrap(), b.name());
        }
    }

    #[test]
    fn bucket_counts_are_keyed_by_series() {
        let b = BucketCounts { bucket: "2023-07-10".into(), counts: vec![("denied", 2), ("other_errors", 0)] };
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"bucket":"2023-07-10","denied":2,"other_errors":0}"#);
    }
}
