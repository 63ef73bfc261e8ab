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
//! One pass over the events folded batch by batch (`SessionsFold`): memory holds, per subject, a
//! count per duration asked for (the maximum and the lower median are exact from those), 16 bytes
//! and a subject per temporary key issued, and the first and last use per temporary (`ASIA...`) key
//! seen, never the events.

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

/// A role or user sessions were issued for, and its sessions: how many asked for each duration
/// (the answer's maximum and lower median come from these counts), how many took the default.
struct Subject {
    principal: Option<String>,
    principal_type: Option<String>,
    calls: std::collections::BTreeSet<String>,
    requested: std::collections::BTreeMap<i64, u32>,
    defaulted: u32,
}

/// The first and last use of a temporary key, in ms.
#[derive(Clone, Copy)]
struct Use {
    first: i64,
    last: i64,
}

/// Values by temporary access key. A session is issued with a key and used with it, and a long
/// trail issues millions: a key of at most 21 ASCII letters and digits (AWS's are `ASIA` and 16
/// more) is kept packed in 16 bytes, six bits a character (none of them 0, so that keys of
/// different lengths differ), not as a `String` of its own; any other key by its text.
struct KeyMap<V> {
    packed: hashbrown::HashMap<[u8; 16], V>,
    text: hashbrown::HashMap<Box<str>, V>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap { packed: Default::default(), text: Default::default() }
    }
}

/// `key` packed (see `KeyMap`), `None` when it does not fit.
fn pack(key: &str) -> Option<[u8; 16]> {
    if key.len() > 21 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let code = |b: u8| -> u128 {
        u128::from(match b {
            b'0'..=b'9' => b - b'0' + 1,
            b'A'..=b'Z' => b - b'A' + 11,
            _ => b - b'a' + 37,
        })
    };
    Some(key.bytes().fold(0u128, |packed, b| (packed << 6) | code(b)).to_le_bytes())
}

impl<V> KeyMap<V> {
    fn get(&self, key: &str) -> Option<&V> {
        match pack(key) {
            Some(p) => self.packed.get(&p),
            None => self.text.get(key),
        }
    }

    /// The value of `key`, made by `new` when the key is new.
    fn entry(&mut self, key: &str, new: impl FnOnce() -> V) -> &mut V {
        match pack(key) {
            Some(p) => self.packed.entry(p).or_insert_with(new),
            None => self.text.entry(key.into()).or_insert_with(new),
        }
    }
}

#[derive(Default)]
struct State {
    subjects: Vec<Subject>,
    index: hashbrown::HashMap<Option<String>, usize>,
    /// The subject each temporary key was issued to; a key issued again (bad input: AWS never
    /// issues a key twice) to another or the same subject, in `reissued`.
    issued: KeyMap<u32>,
    reissued: Vec<(String, u32)>,
    /// Temporary keys seen used (looked up by text: every event made with one updates it).
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
            requested: Default::default(),
            defaulted: 0,
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
        let subject = &mut self.subjects[s];
        *subject.requested.entry(asked.unwrap_or(default)).or_default() += 1;
        subject.defaulted += u32::from(asked.is_none());
        let key = resp.get("credentials").and_then(|c| c.get("accessKeyId")).and_then(Value::as_str);
        if let Some(key) = key.filter(|k| !k.is_empty()) {
            let s = u32::try_from(s).unwrap_or(u32::MAX);
            let mut new = false;
            self.issued.entry(key, || {
                new = true;
                s
            });
            if !new {
                self.reissued.push((key.to_string(), s));
            }
        }
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

/// `typical` of values given as (value, how many times) in ascending order of value.
fn typical_of_counts(counts: &std::collections::BTreeMap<i64, u32>) -> Option<i64> {
    let n: u64 = counts.values().map(|&c| u64::from(c)).sum();
    let wanted = n.checked_sub(1)? / 2;
    let mut seen = 0u64;
    counts.iter().find_map(|(&v, &c)| {
        seen += u64::from(c);
        (seen > wanted).then_some(v)
    })
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
    // Each session issued with a key that was used: how long it was used, for its subject.
    let mut uses: KeyMap<Use> = KeyMap::default();
    for (key, u) in &state.keys {
        *uses.entry(key, || *u) = *u;
    }
    let mut used: Vec<Vec<i64>> = vec![Vec::new(); state.subjects.len()];
    let span = |u: &Use| (u.last - u.first).div_euclid(1000);
    let mut add = |subject: u32, u: Option<&Use>| {
        if let (Some(u), Some(list)) = (u, used.get_mut(subject as usize)) {
            list.push(span(u));
        }
    };
    for (key, &subject) in &state.issued.packed {
        add(subject, uses.packed.get(key));
    }
    for (key, &subject) in &state.issued.text {
        add(subject, uses.text.get(key));
    }
    for (key, subject) in &state.reissued {
        add(*subject, uses.get(key));
    }
    let mut rows: Vec<Row> = state
        .subjects
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let sessions: u32 = s.requested.values().sum();
            let requested_max = s.requested.keys().next_back().copied().unwrap_or_default();
            let used_max = used[i].iter().copied().max();
            let over = used_max.is_some_and(|u| {
                requested_max >= OVER_FACTOR.saturating_mul(u) && requested_max.saturating_sub(u) >= OVER_MARGIN_S
            });
            let mut notes = Vec::new();
            if s.defaulted > 0 {
                notes.push(format!("{} session(s) without durationSeconds: AWS's default assumed", s.defaulted));
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
                sessions,
                defaulted: s.defaulted,
                requested_max,
                requested_typical: typical_of_counts(&s.requested),
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
    fn typical_of_counts_is_typical_of_the_values() {
        let cases: [&[(i64, u32)]; 5] = [
            &[],
            &[(900, 1)],
            &[(900, 1), (3600, 1)],
            &[(900, 2), (3600, 1)],
            &[(60, 3), (900, 1), (3600, 4), (43_200, 1)],
        ];
        for counts in cases {
            let map: std::collections::BTreeMap<i64, u32> = counts.iter().copied().collect();
            let values: Vec<i64> = counts.iter().flat_map(|&(v, c)| std::iter::repeat_n(v, c as usize)).collect();
            assert_eq!(typical_of_counts(&map), typical(values), "{counts:?}");
        }
    }

    #[test]
    fn keys_are_told_apart_packed_or_not() {
        let keys = [
            "ASIAY34FZKBOKMUTVV7A",
            "ASIAY34FZKBOKMUTVV7B",
            "asiay34fzkbokmutvv7a",
            "ASIA",
            "0ASIA",
            "00ASIA",
            "Z",
            "z",
            "9",
            "ASIAY34FZKBOKMUTVV7A1",
            "ASIAY34FZKBOKMUTVV7A12",
            "ASIAY34FZKBOKMUTVV7A123",
            "ASIA-KEY",
            "ASIA\u{c9}",
        ];
        let mut map: KeyMap<usize> = KeyMap::default();
        for (i, k) in keys.iter().enumerate() {
            *map.entry(k, || i) = i;
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(k), Some(&i), "{k:?}");
        }
        assert_eq!(map.packed.len() + map.text.len(), keys.len());
        assert!(pack("ASIAY34FZKBOKMUTVV7A").is_some() && pack("ASIAY34FZKBOKMUTVV7A123").is_none());
        assert!(pack("ASIA-KEY").is_none() && map.get("ASIA-KEZ").is_none());
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
