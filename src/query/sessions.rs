//! `sessions`: how long temporary credentials are requested for, and how long they are really used.
//!
//! An issuing call is a successful (no errorCode) `sts.amazonaws.com` `AssumeRole`,
//! `AssumeRoleWithSAML`, `AssumeRoleWithWebIdentity` (its subject: the role of
//! `requestParameters.roleArn`), `GetSessionToken` or `GetFederationToken` (its subject: the caller,
//! `userIdentity.arn`). The duration requested is `requestParameters.durationSeconds`; when absent
//! (or not a whole number) AWS's default applies: 3,600 s for the `AssumeRole*` calls, 43,200 s for
//! `GetSessionToken` and `GetFederationToken` (STS API reference), and the session is counted in
//! `sessions_default_duration`. A session's use is the span from the first to the last event made
//! with its temporary key (`responseElements.credentials.accessKeyId`, carried by later events as
//! `userIdentity.accessKeyId`), in whole seconds.
//!
//! One pass over the events folded batch by batch (`SessionsFold`): memory holds one entry per
//! issued session and one per temporary (`ASIA...`) key seen, never the events.

use polars::prelude::*;
use serde_json::Value;

use super::Answer;
use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;

/// The string columns `sessions` reads (raw files fill only these; see `ReadOptions::columns`):
/// what it needs plus what the shared filters and de-duplication read.
pub const COLUMNS_READ: &[&str] = &[
    c::IDENTITY_TYPE,
    c::ACCOUNT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::ERROR_CODE,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::AWS_REGION,
    c::ACCESS_KEY_ID,
    c::EVENT_ID,
    c::ARN,
    c::REQUEST_PARAMETERS,
    c::RESPONSE_ELEMENTS,
];

/// The issuing calls and AWS's default `DurationSeconds` for each.
pub const ISSUING: [(&str, i64); 5] = [
    ("AssumeRole", 3600),
    ("AssumeRoleWithSAML", 3600),
    ("AssumeRoleWithWebIdentity", 3600),
    ("GetSessionToken", 43_200),
    ("GetFederationToken", 43_200),
];

/// The flag `over_requested`: the longest duration requested is at least this many times the
/// longest use seen...
pub const OVER_FACTOR: i64 = 4;
/// ...and at least this many seconds more.
pub const OVER_MARGIN_S: i64 = 3600;

/// One issued session.
struct Issue {
    subject: usize,
    requested: i64,
    defaulted: bool,
    key: Option<String>,
}

/// A role or user sessions were issued for.
struct Subject {
    principal: Option<String>,
    principal_type: Option<String>,
    calls: std::collections::BTreeSet<String>,
}

/// The first and last use of a temporary key, in ms.
#[derive(Clone, Copy)]
struct Use {
    first: i64,
    last: i64,
}

#[derive(Default)]
struct State {
    subjects: Vec<Subject>,
    index: hashbrown::HashMap<Option<String>, usize>,
    issues: Vec<Issue>,
    keys: hashbrown::HashMap<String, Use>,
}

/// `durationSeconds` as a whole number of seconds (a JSON number or a numeric string).
fn duration_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

impl State {
    fn subject(&mut self, principal: Option<String>, principal_type: Option<&str>) -> usize {
        if let Some(&i) = self.index.get(&principal) {
            return i;
        }
        let i = self.subjects.len();
        self.subjects.push(Subject {
            principal: principal.clone(),
            principal_type: principal_type.map(str::to_string),
            calls: Default::default(),
        });
        self.index.insert(principal, i);
        i
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &mut self,
        name: &str,
        default: i64,
        identity_type: Option<&str>,
        caller_arn: Option<&str>,
        request: Option<&str>,
        response: Option<&str>,
    ) {
        let req = parse(request);
        let resp = parse(response);
        let (principal, ptype) = if name.starts_with("AssumeRole") {
            (req.get("roleArn").and_then(Value::as_str).map(str::to_string), Some("Role"))
        } else {
            (caller_arn.filter(|a| !a.is_empty()).map(str::to_string), identity_type)
        };
        let s = self.subject(principal, ptype);
        if !self.subjects[s].calls.contains(name) {
            self.subjects[s].calls.insert(name.to_string());
        }
        let asked = req.get("durationSeconds").and_then(duration_of);
        let key = resp
            .get("credentials")
            .and_then(|c| c.get("accessKeyId"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        self.issues.push(Issue { subject: s, requested: asked.unwrap_or(default), defaulted: asked.is_none(), key });
    }

    fn used(&mut self, key: &str, t: i64) {
        match self.keys.get_mut(key) {
            Some(u) => {
                u.first = u.first.min(t);
                u.last = u.last.max(t);
            }
            None => {
                self.keys.insert(key.to_string(), Use { first: t, last: t });
            }
        }
    }
}

fn fold_batch(state: &mut State, df: &DataFrame) -> PolarsResult<()> {
    let s = |n: &str| -> PolarsResult<Vec<Option<&str>>> { Ok(df.column(n)?.str()?.iter().collect()) };
    let (name, itype, arn, key) = (s(c::EVENT_NAME)?, s(c::IDENTITY_TYPE)?, s(c::ARN)?, s(c::ACCESS_KEY_ID)?);
    let (req, resp) = (s(c::REQUEST_PARAMETERS)?, s(c::RESPONSE_ELEMENTS)?);
    let issuing: Vec<Option<bool>> = df.column("_issuing")?.bool()?.iter().collect();
    let times: Vec<Option<i64>> = df.column(c::EVENT_TIME)?.i64()?.iter().collect();
    for i in 0..df.height() {
        if issuing[i] == Some(true) {
            let n = name[i].unwrap_or_default();
            if let Some((_, default)) = ISSUING.iter().find(|(x, _)| *x == n) {
                state.issue(n, *default, itype[i], arn[i], req[i], resp[i]);
            }
        }
        if let (Some(k), Some(t)) = (key[i], times[i]) {
            if k.starts_with("ASIA") {
                state.used(k, t);
            }
        }
    }
    Ok(())
}

/// The lower median (the smaller middle value of an even count): a value that occurred.
fn typical(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

/// The expression that marks issuing calls (successful STS calls of `ISSUING`).
fn is_issuing() -> Expr {
    let names = Series::new("n".into(), ISSUING.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    col(c::EVENT_SOURCE)
        .eq(lit("sts.amazonaws.com"))
        .and(col(c::EVENT_NAME).is_in(lit(names).implode(false), false))
        .and(super::is_error().not())
        .fill_null(lit(false))
}

/// One row per role or user sessions were issued for: principal, principal_type, issued_by (the
/// issuing calls seen), sessions, sessions_default_duration, requested_max_s, requested_typical_s,
/// sessions_used, used_max_s, used_typical_s, over_requested, note. Flagged rows first, then by
/// sessions descending, then principal.
///
/// Folded batch by batch as the events are read (`dataset::fold`): each batch's issuing calls and
/// temporary-key uses update the sessions and keys seen (their text copied out of the batch), so
/// memory holds those, never the events.
#[derive(Default)]
pub struct SessionsFold {
    state: State,
}

impl SessionsFold {
    pub fn add(&mut self, batch: DataFrame) -> Result<()> {
        let issuing = is_issuing();
        let blob = |n: &str| when(issuing.clone()).then(col(n)).otherwise(lit(NULL).cast(DataType::String)).alias(n);
        let df = batch
            .lazy()
            .filter(issuing.clone().or(col(c::ACCESS_KEY_ID).str().starts_with(lit("ASIA")).fill_null(lit(false))))
            .select([
                col(c::EVENT_TIME).cast(DataType::Int64),
                col(c::EVENT_NAME),
                col(c::IDENTITY_TYPE),
                col(c::ARN),
                col(c::ACCESS_KEY_ID),
                blob(c::REQUEST_PARAMETERS),
                blob(c::RESPONSE_ELEMENTS),
                issuing.clone().alias("_issuing"),
            ])
            .collect()
            .context("sessions")?;
        fold_batch(&mut self.state, &df).context("sessions")
    }

    pub fn finish(self) -> Result<Answer> {
        Ok(Answer::one("sessions", frame(self.state).context("sessions")?.lazy()))
    }
}

/// A subject's row before it becomes columns.
struct Row {
    principal: Option<String>,
    principal_type: Option<String>,
    issued_by: String,
    sessions: u32,
    defaulted: u32,
    requested_max: i64,
    requested_typical: Option<i64>,
    used: u32,
    used_max: Option<i64>,
    used_typical: Option<i64>,
    over: bool,
    note: Option<String>,
}

fn frame(state: State) -> PolarsResult<DataFrame> {
    let mut requested: Vec<Vec<i64>> = vec![Vec::new(); state.subjects.len()];
    let mut used: Vec<Vec<i64>> = vec![Vec::new(); state.subjects.len()];
    let mut defaulted = vec![0u32; state.subjects.len()];
    for is in &state.issues {
        requested[is.subject].push(is.requested);
        defaulted[is.subject] += u32::from(is.defaulted);
        if let Some(u) = is.key.as_deref().and_then(|k| state.keys.get(k)) {
            used[is.subject].push((u.last - u.first).div_euclid(1000));
        }
    }
    let mut rows: Vec<Row> = state
        .subjects
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let requested_max = requested[i].iter().copied().max().unwrap_or_default();
            let used_max = used[i].iter().copied().max();
            let over = used_max.is_some_and(|u| {
                requested_max >= OVER_FACTOR.saturating_mul(u) && requested_max.saturating_sub(u) >= OVER_MARGIN_S
            });
            let mut notes = Vec::new();
            if defaulted[i] > 0 {
                notes.push(format!("{} session(s) without durationSeconds: AWS's default assumed", defaulted[i]));
            }
            if used[i].is_empty() {
                notes.push("no session seen used in these events".to_string());
            }
            if over {
                notes.push(format!(
                    "requested up to {requested_max} s, used at most {} s: lower the role's maximum session duration \
                     (or the DurationSeconds asked for)",
                    used_max.unwrap_or_default()
                ));
            }
            Row {
                principal: s.principal,
                principal_type: s.principal_type,
                issued_by: s.calls.into_iter().collect::<Vec<_>>().join(", "),
                sessions: requested[i].len() as u32,
                defaulted: defaulted[i],
                requested_max,
                requested_typical: typical(std::mem::take(&mut requested[i])),
                used: used[i].len() as u32,
                used_max,
                used_typical: typical(std::mem::take(&mut used[i])),
                over,
                note: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.over.cmp(&a.over).then(b.sessions.cmp(&a.sessions)).then_with(|| match (&a.principal, &b.principal) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
        })
    });
    let n = rows.len();
    DataFrame::new(
        n,
        vec![
            Column::new("principal".into(), rows.iter().map(|r| r.principal.clone()).collect::<Vec<_>>()),
            Column::new("principal_type".into(), rows.iter().map(|r| r.principal_type.clone()).collect::<Vec<_>>()),
            Column::new("issued_by".into(), rows.iter().map(|r| r.issued_by.clone()).collect::<Vec<_>>()),
            Column::new("sessions".into(), rows.iter().map(|r| r.sessions).collect::<Vec<_>>()),
            Column::new("sessions_default_duration".into(), rows.iter().map(|r| r.defaulted).collect::<Vec<_>>()),
            Column::new("requested_max_s".into(), rows.iter().map(|r| r.requested_max).collect::<Vec<_>>()),
            Column::new("requested_typical_s".into(), rows.iter().map(|r| r.requested_typical).collect::<Vec<_>>()),
            Column::new("sessions_used".into(), rows.iter().map(|r| r.used).collect::<Vec<_>>()),
            Column::new("used_max_s".into(), rows.iter().map(|r| r.used_max).collect::<Vec<_>>()),
            Column::new("used_typical_s".into(), rows.iter().map(|r| r.used_typical).collect::<Vec<_>>()),
            Column::new("over_requested".into(), rows.iter().map(|r| r.over).collect::<Vec<_>>()),
            Column::new("note".into(), rows.iter().map(|r| r.note.clone()).collect::<Vec<_>>()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_is_the_lower_median() {
        assert_eq!(typical(vec![]), None);
        assert_eq!(typical(vec![5]), Some(5));
        assert_eq!(typical(vec![900, 3600]), Some(900));
        assert_eq!(typical(vec![3600, 900, 1800]), Some(1800));
    }

    #[test]
    fn durations_are_numbers_or_numeric_strings() {
        assert_eq!(duration_of(&serde_json::json!(900)), Some(900));
        assert_eq!(duration_of(&serde_json::json!("1800")), Some(1800));
        assert_eq!(duration_of(&serde_json::json!("soon")), None);
        assert_eq!(duration_of(&serde_json::json!(1.5)), None);
        assert_eq!(duration_of(&serde_json::json!(null)), None);
    }
}
