//! `unused`: IAM permissions granted but never used, per principal and per action, for any window,
//! offline. Granted comes from the authorization-details snapshot (`authz.rs`, `policy.rs`); used from
//! successful events (`actions.rs`). Each granted action is `used`, `unused`, or `not_logged` when
//! CloudTrail could not have shown its use; an action is never called unused when the logs could not
//! have shown it. Denied calls are `attempted`, never used; a call that failed after authorization
//! (`iam::errors`: `NoSuchWebsiteConfiguration`, `TrailNotFoundException`, ...) used its permission; a
//! failure that may precede authorization (throttling, an expired key) is noted, not counted.

use crate::query::Run;
use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use serde_json::{json, Value};

use crate::error::{Error, PolarsContext, Result};
use crate::iam::actions::{self, Mapped};
use crate::iam::authz::{self, AttachedPolicy, AuthorizationDetails, InlinePolicy};
use crate::iam::catalogue::Catalogue;
use crate::iam::errors::ErrorClass;
use crate::iam::policy::{self, NamedPolicy, Permissions};
use crate::iam::resources::{self, Scope};
use crate::ingest::frame::col_name as c;
use crate::query::is_error;

/// A user or role of the snapshot with its identity policies.
pub struct Principal {
    pub kind: &'static str,
    pub name: String,
    pub arn: String,
    pub id: String,
    pub permissions: Permissions,
    /// A role's `RoleLastUsed` from the snapshot (date, region), when it carries one.
    pub role_last_used: Option<(Option<String>, Option<String>)>,
    /// A permission set (`by_permission_set`): the accounts whose snapshot has its role.
    pub accounts: Vec<String>,
}

fn inline(list: &[InlinePolicy], suffix: &str, out: &mut Vec<NamedPolicy>, warnings: &mut Vec<String>) {
    for p in list {
        match authz::document(&p.policy_document) {
            Ok(document) => out.push(NamedPolicy { name: format!("{}{suffix}", p.policy_name), document }),
            Err(e) => warnings.push(format!("inline policy {}: {e}", p.policy_name)),
        }
    }
}

fn managed(
    az: &AuthorizationDetails,
    list: &[AttachedPolicy],
    suffix: &str,
    out: &mut Vec<NamedPolicy>,
    warnings: &mut Vec<String>,
) {
    for a in list {
        let name = a.policy_name.clone().unwrap_or_else(|| a.policy_arn.rsplit('/').next().unwrap_or("").to_string());
        match az.policy(&a.policy_arn).and_then(|p| p.default_document()) {
            Some(doc) => match authz::document(doc) {
                Ok(document) => out.push(NamedPolicy { name: format!("{name}{suffix}"), document }),
                Err(e) => warnings.push(format!("managed policy {}: {e}", a.policy_arn)),
            },
            None => warnings.push(format!(
                "managed policy {} is attached but its document is not in the authorization details",
                a.policy_arn
            )),
        }
    }
}

fn boundary(az: &AuthorizationDetails, b: Option<&authz::Boundary>, warnings: &mut Vec<String>) -> Option<Permissions> {
    let arn = &b?.permissions_boundary_arn;
    let mut docs = Vec::new();
    managed(az, &[AttachedPolicy { policy_name: None, policy_arn: arn.clone() }], "", &mut docs, warnings);
    if docs.is_empty() {
        warnings.push(format!("permissions boundary {arn} could not be read: granted actions are not narrowed by it"));
        return None;
    }
    Some(policy::evaluate(Catalogue::get(), &docs))
}

/// Every user and role of the snapshot with its granted actions.
pub fn principals(az: &AuthorizationDetails) -> Vec<Principal> {
    let cat = Catalogue::get();
    let mut out = Vec::new();
    for u in &az.user_detail_list {
        let (mut docs, mut warnings) = (Vec::new(), Vec::new());
        inline(&u.user_policy_list, " (inline)", &mut docs, &mut warnings);
        managed(az, &u.attached_managed_policies, "", &mut docs, &mut warnings);
        for g in &u.group_list {
            match az.group(g, &u.arn) {
                Some(group) => {
                    let suffix = format!(" (group {g})");
                    inline(&group.group_policy_list, &suffix, &mut docs, &mut warnings);
                    managed(az, &group.attached_managed_policies, &suffix, &mut docs, &mut warnings);
                }
                None => warnings.push(format!("group {g} is not in the authorization details")),
            }
        }
        let b = boundary(az, u.permissions_boundary.as_ref(), &mut warnings);
        out.push(finish("User", &u.user_name, &u.arn, &u.user_id, cat, docs, b, warnings));
    }
    for r in &az.role_detail_list {
        let (mut docs, mut warnings) = (Vec::new(), Vec::new());
        inline(&r.role_policy_list, " (inline)", &mut docs, &mut warnings);
        managed(az, &r.attached_managed_policies, "", &mut docs, &mut warnings);
        let b = boundary(az, r.permissions_boundary.as_ref(), &mut warnings);
        let mut p = finish("Role", &r.role_name, &r.arn, &r.role_id, cat, docs, b, warnings);
        p.role_last_used = r.role_last_used.as_ref().map(|u| (u.last_used_date.clone(), u.region.clone()));
        out.push(p);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn finish(
    kind: &'static str,
    name: &str,
    arn: &str,
    id: &str,
    cat: &Catalogue,
    docs: Vec<NamedPolicy>,
    boundary: Option<Permissions>,
    warnings: Vec<String>,
) -> Principal {
    let mut permissions = policy::evaluate(cat, &docs);
    if let Some(b) = &boundary {
        policy::apply_boundary(&mut permissions, b);
    }
    permissions.warnings.extend(warnings);
    Principal {
        kind,
        name: name.to_string(),
        arn: arn.to_string(),
        id: id.to_string(),
        permissions,
        role_last_used: None,
        accounts: Vec::new(),
    }
}

/// What the events say about one principal.
#[derive(Default)]
struct Usage {
    events: u64,
    last_activity: Option<i64>,
    used: BTreeMap<usize, i64>,
    attempted: BTreeMap<usize, u64>,
    /// Calls that failed in a way that may precede authorization: how many, and the error codes.
    inconclusive: BTreeMap<usize, (u64, BTreeSet<String>)>,
    unknown: BTreeSet<String>,
}

/// Everything the analysis found.
pub struct Analysis {
    pub principals: Vec<Principal>,
    usage: Vec<Usage>,
    /// Per principal, the resources its calls named (`scope_resources`); empty until then.
    scopes: Vec<Option<resources::Scoper>>,
    data_sources: hashbrown::HashSet<String>,
    read_events: bool,
}

/// Event types that are not calls made with the principal's permissions.
pub const NOT_CALLS: [&str; 3] = ["AwsServiceEvent", "AwsConsoleSignIn", "AwsCloudTrailInsight"];

/// The used-actions side of the analysis, with no snapshot: per `principal` and action (as the event
/// names it, before the catalogue's spelling: what `used.sql` of the SQL pack computes), the
/// successful calls and the last one. Sorted by principal (nulls last), then action.
pub fn used_actions(events: LazyFrame) -> Result<DataFrame> {
    let not_call = NOT_CALLS.iter().map(|t| col(c::EVENT_TYPE).eq(lit(*t))).reduce(|a, b| a.or(b)).expect("types");
    let grouped = events
        .filter(crate::iam::errors::exercised(col(c::ERROR_CODE)).and(not_call.fill_null(lit(false)).not()))
        .group_by([col(c::PRINCIPAL), col(c::EVENT_SOURCE), col(c::EVENT_NAME)])
        .agg([len().cast(DataType::UInt64).alias("n"), col(c::EVENT_TIME).max().cast(DataType::Int64).alias("last")])
        .run()
        .context("grouping successful calls")?;
    let (principal, source, name) =
        (strs(&grouped, c::PRINCIPAL)?, strs(&grouped, c::EVENT_SOURCE)?, strs(&grouped, c::EVENT_NAME)?);
    let n = grouped.column("n").context("n")?.u64().context("n")?.clone();
    let last = grouped.column("last").context("last")?.i64().context("last")?.clone();
    // Key: (principal missing, so nulls sort last; principal; action) -> (calls, last call).
    type Key = (bool, Option<String>, String);
    let mut acc: BTreeMap<Key, (u64, Option<i64>)> = BTreeMap::new();
    for i in 0..grouped.height() {
        let (Some(s), Some(e)) = (source.get(i), name.get(i)) else { continue };
        let Some(actions) = actions::event_actions(s, e) else { continue };
        let who = principal.get(i).map(str::to_string);
        for a in actions {
            let entry = acc.entry((who.is_none(), who.clone(), a)).or_insert((0, None));
            entry.0 += n.get(i).unwrap_or(0);
            entry.1 = entry.1.max(last.get(i));
        }
    }
    let rows: Vec<_> = acc.into_iter().collect();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new("principal".into(), rows.iter().map(|((_, p, _), _)| p.clone()).collect::<Vec<_>>()),
            Column::new("action".into(), rows.iter().map(|((_, _, a), _)| a.clone()).collect::<Vec<_>>()),
            Column::new("events".into(), rows.iter().map(|(_, (n, _))| *n).collect::<Vec<_>>()),
            ms_column("last_used", rows.iter().map(|(_, (_, t))| *t).collect()),
        ],
    )
    .context("used actions")
}

fn strs(df: &DataFrame, name: &str) -> Result<StringChunked> {
    Ok(df.column(name).context(name)?.str().context(name)?.clone())
}

/// What `analyze` groups the events by (with the error code of failed calls): who called what.
const GROUP_KEYS: [&str; 8] = [
    c::IDENTITY_TYPE,
    c::ARN,
    c::PRINCIPAL_ID,
    c::SESSION_ISSUER_PRINCIPAL_ID,
    c::SESSION_ISSUER_ARN,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::EVENT_TYPE,
];

/// The string columns `analyze` reads (raw files fill only these; see `ReadOptions::columns`): the
/// group keys, the error code and category, and what the shared filters and de-duplication read.
pub const COLUMNS_READ: &[&str] = &[
    c::IDENTITY_TYPE,
    c::ARN,
    c::PRINCIPAL_ID,
    c::SESSION_ISSUER_PRINCIPAL_ID,
    c::SESSION_ISSUER_ARN,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::EVENT_TYPE,
    c::ERROR_CODE,
    c::EVENT_CATEGORY,
    c::EVENT_ID,
    c::ACCOUNT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::AWS_REGION,
];

/// One group of events: the `GROUP_KEYS` and the error code (null for a success), how many events
/// and the last one's time.
struct Group {
    keys: [Option<String>; 9],
    n: u64,
    last: Option<i64>,
}

/// The events grouped by who called what and how it ended, folded batch by batch as they are read
/// (`dataset::fold`): counts add up, the last call takes the latest, the text is copied out of the
/// batch. Memory holds one entry per group, never the events. `analyze` turns it into verdicts.
#[derive(Default)]
pub struct UsageFold {
    /// A group's keys, written unambiguously (see `add`), to its place in `groups`.
    index: hashbrown::HashMap<String, usize>,
    groups: Vec<Group>,
    /// The services that logged data events, and whether any read-only event was logged.
    data_sources: hashbrown::HashSet<String>,
    read_events: bool,
}

impl UsageFold {
    pub fn add(&mut self, batch: DataFrame) -> Result<()> {
        let mut group: Vec<Expr> = GROUP_KEYS.iter().map(|k| col(*k)).collect();
        group
            .push(when(is_error()).then(col(c::ERROR_CODE)).otherwise(lit(NULL).cast(DataType::String)).alias("error"));
        let events = batch.lazy();
        let grouped = events
            .clone()
            .group_by(group)
            .agg([
                len().cast(DataType::UInt64).alias("n"),
                col(c::EVENT_TIME).max().cast(DataType::Int64).alias("last"),
            ])
            .collect()
            .context("grouping events by principal and call")?;
        let context = events
            .select([
                col(c::EVENT_SOURCE)
                    .filter(col(c::EVENT_CATEGORY).eq(lit("Data")).fill_null(lit(false)))
                    .unique()
                    .implode(false)
                    .alias("data_sources"),
                col(c::READ_ONLY).eq(lit(true)).fill_null(lit(false)).any(true).alias("read_events"),
            ])
            .collect()
            .context("reading the trail's coverage")?;
        if let Ok(AnyValue::List(s)) = context.column("data_sources").context("data")?.get(0) {
            for source in s.str().context("data")?.iter().flatten() {
                if !self.data_sources.contains(source) {
                    self.data_sources.insert(source.to_string());
                }
            }
        }
        self.read_events |=
            matches!(context.column("read_events").context("read")?.get(0), Ok(AnyValue::Boolean(true)));

        let mut columns = GROUP_KEYS.iter().map(|k| strs(&grouped, k)).collect::<Result<Vec<_>>>()?;
        columns.push(strs(&grouped, "error")?);
        let n = grouped.column("n").context("n")?.u64().context("n")?.clone();
        let last = grouped.column("last").context("last")?.i64().context("last")?.clone();
        let mut key = String::new();
        for i in 0..grouped.height() {
            // Each key as `-` (null) or its length, `:` and its text: no two groups write the same.
            key.clear();
            for column in &columns {
                match column.get(i) {
                    None => key.push('-'),
                    Some(v) => {
                        key.push_str(&v.len().to_string());
                        key.push(':');
                        key.push_str(v);
                    }
                }
            }
            let (count, at) = (n.get(i).unwrap_or(0), last.get(i));
            match self.index.get(key.as_str()) {
                Some(&g) => {
                    let g = &mut self.groups[g];
                    g.n += count;
                    g.last = g.last.max(at);
                }
                None => {
                    self.index.insert(key.clone(), self.groups.len());
                    let keys = std::array::from_fn(|k| columns[k].get(i).map(str::to_string));
                    self.groups.push(Group { keys, n: count, last: at });
                }
            }
        }
        Ok(())
    }

    /// Attribute the groups to the snapshot's principals and map them to actions.
    pub fn analyze(self, az: &AuthorizationDetails) -> Result<Analysis> {
        analyze_groups(az, self)
    }
}

/// Attribute the events to the snapshot's principals and map them to actions (`UsageFold` over the
/// events, then `UsageFold::analyze`).
pub fn analyze(az: &AuthorizationDetails, events: LazyFrame) -> Result<Analysis> {
    let mut fold = UsageFold::default();
    super::stream(events, |df| fold.add(df))?;
    fold.analyze(az)
}

fn analyze_groups(az: &AuthorizationDetails, fold: UsageFold) -> Result<Analysis> {
    let cat = Catalogue::get();
    let principals = principals(az);
    let UsageFold { groups, data_sources, read_events, .. } = fold;

    // Lookups from the identifiers CloudTrail records to the snapshot's principals.
    let mut by_id: hashbrown::HashMap<&str, usize> = hashbrown::HashMap::new();
    let mut by_arn: hashbrown::HashMap<&str, usize> = hashbrown::HashMap::new();
    for (i, p) in principals.iter().enumerate() {
        by_id.insert(p.id.as_str(), i);
        by_arn.insert(p.arn.as_str(), i);
    }
    let mut usage: Vec<Usage> = principals.iter().map(|_| Usage::default()).collect();
    for g in &groups {
        let [ty, arn, pid, sipid, siarn, src, name, etype, out] = g.keys.each_ref().map(Option::as_deref);
        let who = match ty {
            Some("IAMUser") => pid.and_then(|x| by_id.get(x)).or_else(|| arn.and_then(|x| by_arn.get(x))),
            Some("AssumedRole") => sipid.and_then(|x| by_id.get(x)).or_else(|| siarn.and_then(|x| by_arn.get(x))),
            _ => None,
        };
        let Some(&who) = who else { continue };
        let u = &mut usage[who];
        let (count, at) = (g.n, g.last);
        u.events += count;
        u.last_activity = u.last_activity.max(at);
        if etype.is_some_and(|t| NOT_CALLS.contains(&t)) {
            continue;
        }
        let (Some(s), Some(e)) = (src, name) else { continue };
        let acts = match actions::map_event(cat, s, e) {
            Mapped::Actions(a) => a,
            Mapped::NoPermission => continue,
            Mapped::Unknown(a) => {
                u.unknown.insert(a);
                continue;
            }
        };
        let class = out.map(crate::iam::errors::classify);
        for a in acts.iter().filter_map(|a| cat.index(a)) {
            match class {
                None | Some(ErrorClass::AfterAuthorization) => {
                    let t = u.used.entry(a).or_insert(i64::MIN);
                    *t = (*t).max(at.unwrap_or(i64::MIN));
                }
                Some(ErrorClass::Denied) => *u.attempted.entry(a).or_insert(0) += count,
                Some(ErrorClass::Unknown) => {
                    let e = u.inconclusive.entry(a).or_default();
                    e.0 += count;
                    e.1.insert(out.unwrap_or_default().to_string());
                }
            }
        }
    }
    drop((by_id, by_arn));
    let scopes = principals.iter().map(|_| None).collect();
    Ok(Analysis { principals, usage, scopes, data_sources, read_events })
}

impl Usage {
    fn merge(&mut self, o: Usage) {
        self.events += o.events;
        self.last_activity = self.last_activity.max(o.last_activity);
        for (a, t) in o.used {
            let e = self.used.entry(a).or_insert(t);
            *e = (*e).max(t);
        }
        for (a, n) in o.attempted {
            *self.attempted.entry(a).or_insert(0) += n;
        }
        for (a, (n, codes)) in o.inconclusive {
            let e = self.inconclusive.entry(a).or_default();
            e.0 += n;
            e.1.extend(codes);
        }
        self.unknown.extend(o.unknown);
    }
}

/// One (principal, action) verdict.
pub struct Verdict<'a> {
    pub principal: &'a Principal,
    pub action: &'a str,
    pub level: &'static str,
    pub status: &'static str,
    pub granted_by: String,
    pub last_used: Option<i64>,
    pub note: String,
    /// What the action allows (`iam::risk`), most severe first.
    pub risk: Vec<crate::iam::risk::Risk>,
}

impl Analysis {
    fn verdicts(&self, i: usize) -> Vec<Verdict<'_>> {
        let cat = Catalogue::get();
        let p = &self.principals[i];
        let u = &self.usage[i];
        p.permissions
            .actions
            .iter()
            .map(|(&a, grant)| {
                let action = cat.name(a);
                let mut notes: Vec<String> = grant.notes.iter().cloned().collect();
                let (status, last_used) = if let Some(&t) = u.used.get(&a) {
                    ("used", Some(t))
                } else if let Some(why) = actions::not_logged_reason(cat, action, &self.data_sources, self.read_events)
                {
                    notes.push(why);
                    ("not_logged", None)
                } else {
                    ("unused", None)
                };
                if let Some(n) = u.attempted.get(&a) {
                    notes.push(format!("attempted {n} times, denied"));
                }
                if let (Some((n, codes)), "unused" | "not_logged") = (u.inconclusive.get(&a), status) {
                    let codes = codes.iter().cloned().collect::<Vec<_>>().join(", ");
                    notes.push(format!(
                        "{n} calls failed with {codes}, which may come before authorization: not counted"
                    ));
                }
                Verdict {
                    principal: p,
                    action,
                    risk: crate::iam::risk::classify(action, cat.level(a)),
                    level: cat.level(a).name(),
                    status,
                    granted_by: grant.granted_by.iter().cloned().collect::<Vec<_>>().join(", "),
                    last_used,
                    note: notes.join("; "),
                }
            })
            .collect()
    }

    /// One row per principal of the snapshot, largest unused count first.
    pub fn summary(&self) -> Result<DataFrame> {
        let mut rows: Vec<(usize, [u64; 5])> = Vec::new();
        // Per principal: unused actions of a severe risk, and those allowing privilege escalation.
        let mut risky: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); self.principals.len()];
        for (i, risk) in risky.iter_mut().enumerate() {
            let v = self.verdicts(i);
            for x in v.iter().filter(|x| x.status == "unused") {
                if x.risk.iter().any(|r| r.is_severe()) {
                    risk.0 += 1;
                }
                if x.risk.contains(&crate::iam::risk::Risk::PrivilegeEscalation) {
                    risk.1.push(x.action.to_string());
                }
            }
            let count = |s: &str| v.iter().filter(|x| x.status == s).count() as u64;
            let attempted = self.usage[i].attempted.len() as u64;
            rows.push((i, [v.len() as u64, count("used"), count("unused"), count("not_logged"), attempted]));
        }
        rows.sort_by(|a, b| b.1[2].cmp(&a.1[2]).then_with(|| self.principals[a.0].arn.cmp(&self.principals[b.0].arn)));
        let p = |i: usize| &self.principals[i];
        let share = |r: &[u64; 5]| {
            let judged = r[1] + r[2];
            (judged > 0).then(|| (r[2] as f64 / judged as f64 * 1000.0).round() / 1000.0)
        };
        let warnings = |i: usize| {
            let mut w = p(i).permissions.warnings.clone();
            let ungranted: Vec<&str> = self.usage[i]
                .used
                .keys()
                .filter(|a| !p(i).permissions.actions.contains_key(a))
                .map(|a| Catalogue::get().name(*a))
                .collect();
            if !ungranted.is_empty() {
                w.push(format!(
                    "used but not granted by the snapshot (a policy missing from it, or a resource policy): {}",
                    ungranted.join(", ")
                ));
            }
            let unknown = &self.usage[i].unknown;
            if !unknown.is_empty() {
                w.push(format!(
                    "calls not in the action catalogue: {}",
                    unknown.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            w.join("; ")
        };
        let df = DataFrame::new(
            rows.len(),
            vec![
                Column::new("principal".into(), rows.iter().map(|r| p(r.0).arn.clone()).collect::<Vec<_>>()),
                Column::new("principal_type".into(), rows.iter().map(|r| p(r.0).kind).collect::<Vec<_>>()),
                Column::new("name".into(), rows.iter().map(|r| p(r.0).name.clone()).collect::<Vec<_>>()),
                Column::new("events".into(), rows.iter().map(|r| self.usage[r.0].events).collect::<Vec<_>>()),
                ms_column("last_activity", rows.iter().map(|r| self.usage[r.0].last_activity).collect()),
                Column::new("granted".into(), rows.iter().map(|r| r.1[0]).collect::<Vec<_>>()),
                Column::new("used".into(), rows.iter().map(|r| r.1[1]).collect::<Vec<_>>()),
                Column::new("unused".into(), rows.iter().map(|r| r.1[2]).collect::<Vec<_>>()),
                Column::new("not_logged".into(), rows.iter().map(|r| r.1[3]).collect::<Vec<_>>()),
                Column::new("attempted".into(), rows.iter().map(|r| r.1[4]).collect::<Vec<_>>()),
                Column::new("unused_share".into(), rows.iter().map(|r| share(&r.1)).collect::<Vec<_>>()),
                Column::new("warnings".into(), rows.iter().map(|r| warnings(r.0)).collect::<Vec<_>>()),
                Column::new("unused_risky".into(), rows.iter().map(|r| risky[r.0].0).collect::<Vec<_>>()),
                Column::new(
                    "remove_first".into(),
                    rows.iter()
                        .map(|r| {
                            let esc = &risky[r.0].1;
                            (!esc.is_empty()).then(|| format!("can escalate, never used: {}", esc.join(", ")))
                        })
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .context("unused summary")?;
        Ok(df)
    }

    /// `--roles`: one row per role of the snapshot with its last use in the events (sessions whose
    /// `sessionIssuer` is the role: by role id, else ARN) and the snapshot's `RoleLastUsed`. status:
    /// `used in the window` (events), `used outside the window (RoleLastUsed)` (no event, but the
    /// snapshot has a date), `never used in the window` (neither). Rows: never used first, then used
    /// outside the window, then used; each by role ARN.
    pub fn roles(&self) -> Result<DataFrame> {
        const STATUS: [&str; 3] =
            ["never used in the window", "used outside the window (RoleLastUsed)", "used in the window"];
        let mut rows: Vec<(usize, usize)> = Vec::new();
        for (i, p) in self.principals.iter().enumerate().filter(|(_, p)| p.kind == "Role") {
            let snapshot_date = p.role_last_used.as_ref().and_then(|u| u.0.as_ref());
            let s = if self.usage[i].events > 0 {
                2
            } else if snapshot_date.is_some() {
                1
            } else {
                0
            };
            rows.push((s, i));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| self.principals[a.1].arn.cmp(&self.principals[b.1].arn)));
        let p = |i: usize| &self.principals[i];
        let last = |i: usize, k: usize| -> Option<String> {
            p(i).role_last_used.as_ref().and_then(|u| if k == 0 { u.0.clone() } else { u.1.clone() })
        };
        DataFrame::new(
            rows.len(),
            vec![
                Column::new("role".into(), rows.iter().map(|r| p(r.1).arn.clone()).collect::<Vec<_>>()),
                Column::new("name".into(), rows.iter().map(|r| p(r.1).name.clone()).collect::<Vec<_>>()),
                Column::new("events".into(), rows.iter().map(|r| self.usage[r.1].events).collect::<Vec<_>>()),
                ms_column("last_used_in_events", rows.iter().map(|r| self.usage[r.1].last_activity).collect()),
                Column::new("role_last_used_date".into(), rows.iter().map(|r| last(r.1, 0)).collect::<Vec<_>>()),
                Column::new("role_last_used_region".into(), rows.iter().map(|r| last(r.1, 1)).collect::<Vec<_>>()),
                Column::new("status".into(), rows.iter().map(|r| STATUS[r.0]).collect::<Vec<_>>()),
            ],
        )
        .context("unused roles")
    }

    /// One row per (principal, granted action), by principal then action.
    pub fn actions(&self) -> Result<DataFrame> {
        let mut order: Vec<usize> = (0..self.principals.len()).collect();
        order.sort_by(|a, b| self.principals[*a].arn.cmp(&self.principals[*b].arn));
        let v: Vec<Verdict> = order.into_iter().flat_map(|i| self.verdicts(i)).collect();
        DataFrame::new(
            v.len(),
            vec![
                Column::new("principal".into(), v.iter().map(|x| x.principal.arn.clone()).collect::<Vec<_>>()),
                Column::new("action".into(), v.iter().map(|x| x.action).collect::<Vec<_>>()),
                Column::new("access_level".into(), v.iter().map(|x| x.level).collect::<Vec<_>>()),
                Column::new("status".into(), v.iter().map(|x| x.status).collect::<Vec<_>>()),
                Column::new("granted_by".into(), v.iter().map(|x| x.granted_by.clone()).collect::<Vec<_>>()),
                ms_column("last_used", v.iter().map(|x| x.last_used).collect()),
                Column::new("note".into(), v.iter().map(|x| x.note.clone()).collect::<Vec<_>>()),
                Column::new(
                    "risk".into(),
                    v.iter().map(|x| x.risk.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")).collect::<Vec<_>>(),
                ),
            ],
        )
        .context("unused actions")
    }

    /// The quarterly review's attestation sheet: one row per (principal, granted action) with what the
    /// events say, what the action allows, a suggested verdict and empty reviewer, decision and
    /// comment columns to fill in. Verdicts: `keep` (used in the window), `remove` (never used
    /// although CloudTrail would show it; the reason says when it allows privilege escalation or
    /// another severe risk), `review` (CloudTrail cannot show its use: `not_logged`). Rows by
    /// principal, then action.
    pub fn attestation(&self) -> Result<DataFrame> {
        let mut order: Vec<usize> = (0..self.principals.len()).collect();
        order.sort_by(|a, b| self.principals[*a].arn.cmp(&self.principals[*b].arn));
        let v: Vec<Verdict> = order.into_iter().flat_map(|i| self.verdicts(i)).collect();
        let verdict = |x: &Verdict| -> (&'static str, String) {
            let severe: Vec<&str> = x.risk.iter().filter(|r| r.is_severe()).map(|r| r.name()).collect();
            match x.status {
                "used" => ("keep", "used in the window".into()),
                "unused" if !severe.is_empty() => {
                    ("remove", format!("never used in the window, and it allows {}", severe.join(", ")))
                }
                "unused" => ("remove", "never used in the window".into()),
                _ => ("review", format!("CloudTrail cannot show its use: {}", x.note)),
            }
        };
        let verdicts: Vec<(&str, String)> = v.iter().map(verdict).collect();
        let empty = || Column::new("".into(), vec![""; v.len()]);
        let named = |c: Column, n: &str| c.with_name(n.into());
        DataFrame::new(
            v.len(),
            vec![
                Column::new("principal".into(), v.iter().map(|x| x.principal.arn.clone()).collect::<Vec<_>>()),
                Column::new("principal_type".into(), v.iter().map(|x| x.principal.kind).collect::<Vec<_>>()),
                Column::new("granted_by".into(), v.iter().map(|x| x.granted_by.clone()).collect::<Vec<_>>()),
                Column::new("action".into(), v.iter().map(|x| x.action).collect::<Vec<_>>()),
                Column::new("access_level".into(), v.iter().map(|x| x.level).collect::<Vec<_>>()),
                Column::new(
                    "risk".into(),
                    v.iter().map(|x| x.risk.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")).collect::<Vec<_>>(),
                ),
                Column::new("status".into(), v.iter().map(|x| x.status).collect::<Vec<_>>()),
                ms_column("last_used", v.iter().map(|x| x.last_used).collect()),
                Column::new("suggested_verdict".into(), verdicts.iter().map(|(s, _)| *s).collect::<Vec<_>>()),
                Column::new("reason".into(), verdicts.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()),
                named(empty(), "reviewer"),
                named(empty(), "decision"),
                named(empty(), "comment"),
            ],
        )
        .context("attestation sheet")
    }

    /// Keep only the principals `who` names (ARN, name or id; `*` and `?` wildcards); an error when
    /// none matches.
    pub fn only(&mut self, who: &str) -> Result<()> {
        let re =
            regex::Regex::new(&crate::query::glob_regex(who)).map_err(|e| Error::Usage(format!("--principal: {e}")))?;
        let keep: Vec<bool> =
            self.principals.iter().map(|p| re.is_match(&p.arn) || re.is_match(&p.name) || p.id == who).collect();
        if !keep.contains(&true) {
            return Err(Error::Usage(format!("--principal {who}: no user or role of the --iam files matches")));
        }
        let mut k = keep.iter();
        self.principals.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        self.usage.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        self.scopes.retain(|_| *k.next().unwrap_or(&false));
        Ok(())
    }

    /// IAM Identity Center permission sets instead of principals: the roles
    /// `AWSReservedSSO_<PermissionSet>_<suffix>` that Identity Center creates in each account are merged
    /// per permission set (granted: the union of what the roles grant, `granted_by` naming the
    /// account; used: a use in any account; the resources the calls named, when read, together).
    /// Principals that are not such roles are dropped. Each permission set's `arn` is
    /// `permission-set/<name>`, its `accounts` the accounts whose snapshot has its role.
    pub fn by_permission_set(self) -> Result<Analysis> {
        let Analysis { principals, usage, scopes, data_sources, read_events } = self;
        let mut sets: BTreeMap<String, (Principal, Usage, Option<resources::Scoper>)> = BTreeMap::new();
        for ((p, u), sc) in principals.into_iter().zip(usage).zip(scopes) {
            let Some(set) = (p.kind == "Role")
                .then(|| p.name.strip_prefix(crate::query::activity::SSO_ROLE_PREFIX))
                .flatten()
                .and_then(|rest| rest.rsplit_once('_').map(|(set, _)| set.to_string()))
            else {
                continue;
            };
            let account = p.arn.split(':').nth(4).unwrap_or("").to_string();
            let entry = sets.entry(set.clone()).or_insert_with(|| {
                let mut merged = Principal {
                    kind: "PermissionSet",
                    name: set.clone(),
                    arn: format!("permission-set/{set}"),
                    id: String::new(),
                    permissions: Permissions::default(),
                    role_last_used: None,
                    accounts: Vec::new(),
                };
                merged.permissions.warnings.clear();
                (merged, Usage::default(), Some(resources::Scoper::default()))
            });
            entry.0.accounts.push(account.clone());
            for (a, g) in p.permissions.actions {
                let m = entry.0.permissions.actions.entry(a).or_default();
                m.granted_by.extend(g.granted_by.into_iter().map(|n| format!("{n} ({account})")));
                m.notes.extend(g.notes);
            }
            entry.0.permissions.warnings.extend(p.permissions.warnings.into_iter().map(|w| format!("{account}: {w}")));
            entry.1.merge(u);
            match (sc, entry.2.as_mut()) {
                (Some(sc), Some(m)) => m.merge(sc),
                _ => entry.2 = None,
            }
        }
        if sets.is_empty() {
            return Err(Error::Usage(
                "--by permission-set: no AWSReservedSSO_<PermissionSet>_<suffix> role in the --iam files".into(),
            ));
        }
        let mut out =
            Analysis { principals: Vec::new(), usage: Vec::new(), scopes: Vec::new(), data_sources, read_events };
        for (_, (mut p, u, sc)) in sets {
            p.accounts.sort();
            p.accounts.dedup();
            out.principals.push(p);
            out.usage.push(u);
            out.scopes.push(sc);
        }
        Ok(out)
    }

    /// The accounts of each permission set (`by_permission_set`), in `summary`'s row order.
    pub fn accounts_column(&self, summary: &DataFrame) -> Result<Column> {
        let rows = strs(summary, "principal")?;
        let v: Vec<String> = rows
            .iter()
            .map(|r| {
                self.principals
                    .iter()
                    .find(|p| Some(p.arn.as_str()) == r)
                    .map_or(String::new(), |p| p.accounts.join(","))
            })
            .collect();
        Ok(Column::new("accounts".into(), v))
    }

    fn find(&self, who: &str) -> Option<usize> {
        self.principals.iter().position(|p| p.arn == who || p.name == who || p.id == who)
    }

    /// Read the events again, streamed, for the resources the calls of `who` (ARN, name or id; every
    /// principal when `None`) named: CloudTrail's `resources` field and the ARNs built from request
    /// parameters (`iam::resources`). `least_privilege` scopes its statements to them.
    pub fn scope_resources(&mut self, events: LazyFrame, who: Option<&str>) -> Result<()> {
        let wanted: Vec<usize> = match who {
            Some(w) => self
                .find(w)
                .map(|i| vec![i])
                .ok_or_else(|| Error::Usage(format!("{w} is not a user or role of the --iam files")))?,
            None => (0..self.principals.len()).collect(),
        };
        let cat = Catalogue::get();
        let mut by_id: hashbrown::HashMap<String, usize> = hashbrown::HashMap::new();
        let mut by_arn: hashbrown::HashMap<String, usize> = hashbrown::HashMap::new();
        let mut known = resources::KnownIam::new();
        for (i, p) in self.principals.iter().enumerate() {
            // arn:PARTITION:iam::ACCOUNT:KIND/PATH/NAME
            let f: Vec<&str> = p.arn.splitn(6, ':').collect();
            if let [_, _, _, _, account, res] = f.as_slice() {
                let kind = res.split('/').next().unwrap_or("");
                known.insert((account.to_string(), kind.to_string(), p.name.clone()), p.arn.clone());
            }
            if wanted.contains(&i) {
                by_id.insert(p.id.clone(), i);
                by_arn.insert(p.arn.clone(), i);
            }
        }
        let who_matches = wanted
            .iter()
            .map(|&i| {
                let p = &self.principals[i];
                let (id, arn) = (lit(p.id.clone()), lit(p.arn.clone()));
                if p.kind == "User" {
                    col(c::IDENTITY_TYPE).eq(lit("IAMUser")).and(col(c::PRINCIPAL_ID).eq(id).or(col(c::ARN).eq(arn)))
                } else {
                    col(c::IDENTITY_TYPE)
                        .eq(lit("AssumedRole"))
                        .and(col(c::SESSION_ISSUER_PRINCIPAL_ID).eq(id).or(col(c::SESSION_ISSUER_ARN).eq(arn)))
                }
            })
            .reduce(|a, b| a.or(b));
        let Some(who_matches) = who_matches else { return Ok(()) };
        let not_call = NOT_CALLS.iter().map(|t| col(c::EVENT_TYPE).eq(lit(*t))).reduce(|a, b| a.or(b)).expect("types");
        let cols = [
            c::IDENTITY_TYPE,
            c::PRINCIPAL_ID,
            c::ARN,
            c::SESSION_ISSUER_PRINCIPAL_ID,
            c::SESSION_ISSUER_ARN,
            c::EVENT_SOURCE,
            c::EVENT_NAME,
            c::ERROR_CODE,
            c::AWS_REGION,
            c::REQUEST_PARAMETERS,
            c::RESOURCES,
        ];
        let plan = events.filter(who_matches.fill_null(lit(false)).and(not_call.fill_null(lit(false)).not())).select(
            cols.iter()
                .map(|k| col(*k))
                .chain([crate::ingest::frame::account_expr().alias("acct")])
                .collect::<Vec<_>>(),
        );
        let mut scopes: Vec<Option<resources::Scoper>> = self.principals.iter().map(|_| None).collect();
        for &i in &wanted {
            scopes[i] = Some(resources::Scoper::default());
        }
        crate::query::stream(plan, |df| {
            let [ty, pid, arn, sipid, siarn, src, name, err, region, params, res] = cols.map(|k| strs(&df, k));
            let (ty, pid, arn, sipid, siarn, src, name, err, region, params, res) =
                (ty?, pid?, arn?, sipid?, siarn?, src?, name?, err?, region?, params?, res?);
            let acct = strs(&df, "acct")?;
            for r in 0..df.height() {
                let who = match ty.get(r) {
                    Some("IAMUser") => {
                        pid.get(r).and_then(|x| by_id.get(x)).or_else(|| arn.get(r).and_then(|x| by_arn.get(x)))
                    }
                    _ => sipid.get(r).and_then(|x| by_id.get(x)).or_else(|| siarn.get(r).and_then(|x| by_arn.get(x))),
                };
                let (Some(&who), Some(s), Some(e)) = (who, src.get(r), name.get(r)) else { continue };
                if err.get(r).is_some_and(|code| crate::iam::errors::classify(code) != ErrorClass::AfterAuthorization) {
                    continue;
                }
                let Mapped::Actions(acts) = actions::map_event(cat, s, e) else { continue };
                let partition = arn.get(r).and_then(|a| a.split(':').nth(1)).filter(|p| !p.is_empty()).unwrap_or("aws");
                let ctx =
                    resources::EventContext { event_source: s, region: region.get(r), account: acct.get(r), partition };
                let mut arns = resources::listed_arns(res.get(r));
                for a in resources::param_arns(&ctx, params.get(r), &known) {
                    if !arns.contains(&a) {
                        arns.push(a);
                    }
                }
                let Some(scoper) = scopes[who].as_mut() else { continue };
                for a in acts.iter().filter_map(|a| cat.index(a)) {
                    scoper.add(cat, a, &arns);
                }
            }
            Ok(())
        })?;
        for i in wanted {
            self.scopes[i] = scopes[i].take();
        }
        Ok(())
    }

    /// A least-privilege identity policy for `who` (ARN, name or id): the actions it used (and was
    /// granted), one statement per service and set of resources: scoped to the resources the calls
    /// named when `scope_resources` has read them (see `iam::resources`), else `"*"`. See
    /// `LeastPrivilege` for what comes back.
    pub fn least_privilege(&self, who: &str) -> Result<LeastPrivilege> {
        let i =
            self.find(who).ok_or_else(|| Error::Usage(format!("{who} is not a user or role of the --iam files")))?;
        let cat = Catalogue::get();
        // (service, resources: empty for "*") -> actions
        let mut groups: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for a in self.usage[i].used.keys() {
            let name = cat.name(*a);
            let service = name.split(':').next().unwrap_or("").to_string();
            let scope = self.scopes[i].as_ref().map_or(Scope::Any, |s| s.scope(*a));
            let res = match scope {
                Scope::Any => Vec::new(),
                Scope::Resources(set) => set.into_iter().collect(),
            };
            groups.entry((service, res)).or_default().push(name.to_string());
        }
        let p = &self.principals[i];
        if groups.is_empty() {
            return Ok(LeastPrivilege::NothingUsed(json!({
                "principal": p.arn,
                "used_actions": 0,
                "granted_actions": p.permissions.actions.len(),
                "recommendation": format!(
                    "{} used none of its permissions in these events: remove its policies (or the {} itself) \
                     rather than grant it a policy; widen the window first if it may act rarely",
                    p.name,
                    p.kind.to_lowercase()
                ),
            })));
        }
        // Statements per service: `*` first, then each set of resources; numbered when more than one.
        let mut per_service: BTreeMap<String, Vec<(Value, Vec<String>)>> = BTreeMap::new();
        for ((service, res), mut acts) in groups {
            acts.sort();
            // A list of resources too long for one policy is cut; so is a long list of actions.
            let resource_chunks: Vec<Value> = if res.is_empty() {
                vec![json!("*")]
            } else {
                chunk_by_size(&res, RESOURCE_CHARS_PER_STATEMENT)
                    .into_iter()
                    .map(|c| if c.len() == 1 { json!(c[0]) } else { json!(c) })
                    .collect()
            };
            for r in resource_chunks {
                for chunk in acts.chunks(ACTIONS_PER_STATEMENT) {
                    per_service.entry(service.clone()).or_default().push((r.clone(), chunk.to_vec()));
                }
            }
        }
        let mut statements: Vec<Value> = Vec::new();
        for (service, list) in per_service {
            let sid: String = service.split(|ch: char| !ch.is_ascii_alphanumeric()).map(capitalize).collect();
            let numbered = list.len() > 1;
            for (n, (resource, acts)) in list.into_iter().enumerate() {
                let sid = if numbered { format!("Used{sid}{}", n + 1) } else { format!("Used{sid}") };
                statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": acts, "Resource": resource}));
            }
        }
        let whole = policy_document(statements.clone());
        if policy_size(&whole) <= MANAGED_POLICY_MAX_CHARS {
            return Ok(LeastPrivilege::Policy(whole));
        }
        // Too large for one managed policy: as few policies as fit, statements kept whole.
        let mut policies = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        for st in statements {
            let mut candidate = current.clone();
            candidate.push(st.clone());
            if !current.is_empty() && policy_size(&policy_document(candidate.clone())) > MANAGED_POLICY_MAX_CHARS {
                policies.push(policy_document(std::mem::take(&mut current)));
                current.push(st);
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            policies.push(policy_document(current));
        }
        Ok(LeastPrivilege::Split(policies))
    }
}

/// Characters of resource ARNs per statement when a list is cut (with 80 actions of ~60 characters
/// a statement stays under the managed-policy limit).
const RESOURCE_CHARS_PER_STATEMENT: usize = 1000;

/// Consecutive runs of `items` whose lengths add up to at most `max` (one item per run at least).
fn chunk_by_size(items: &[String], max: usize) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut size = 0;
    for it in items {
        let len = it.len() + 3;
        match out.last_mut() {
            Some(last) if size + len <= max => {
                last.push(it.clone());
                size += len;
            }
            _ => {
                out.push(vec![it.clone()]);
                size = len;
            }
        }
    }
    out
}

/// IAM's limit on a customer managed policy: 6,144 characters, white space not counted.
pub const MANAGED_POLICY_MAX_CHARS: usize = 6144;

/// Actions per statement when a service's list is cut (each statement stays well under the limit:
/// the longest action names are about 60 characters).
const ACTIONS_PER_STATEMENT: usize = 80;

/// What `least_privilege` gives (as JSON: the document, the list of documents, or the note).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum LeastPrivilege {
    /// One policy document that fits a managed policy.
    Policy(Value),
    /// Several documents, each within `MANAGED_POLICY_MAX_CHARS`, that together grant what was used.
    Split(Vec<Value>),
    /// Nothing was used: a statement saying so and what to do, not an empty policy.
    NothingUsed(Value),
}

fn policy_document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The size IAM counts: the document without white space.
pub fn policy_size(doc: &Value) -> usize {
    serde_json::to_string(doc).map_or(usize::MAX, |s| s.chars().filter(|c| !c.is_whitespace()).count())
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// A UTC millisecond timestamp column.
pub fn ms_column(name: &str, v: Vec<Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), v.into_iter())
        .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
        .into_column()
}

/// Access keys of the IAM credential report that are stale or old (CIS 1.12 / 1.14).
pub fn credential_findings(report: &str, stale_days: i64, as_of_ms: i64) -> Result<DataFrame> {
    let mut lines = report.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let idx = |name: &str| header.iter().position(|h| *h == name);
    let user_i = idx("user").ok_or_else(|| Error::Usage("credential report: no `user` column".into()))?;
    let arn_i = idx("arn");
    let day_ms = 86_400_000i64;
    let parse = |s: &str| {
        crate::ingest::record::parse_time_ms(s)
            .or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis()))
    };
    let (mut user, mut arn, mut key, mut rotated, mut used, mut finding) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
        for k in 1..=2 {
            if get(idx(&format!("access_key_{k}_active"))) != "true" {
                continue;
            }
            let r = parse(get(idx(&format!("access_key_{k}_last_rotated"))));
            let u = parse(get(idx(&format!("access_key_{k}_last_used_date"))));
            let mut found = Vec::new();
            match u {
                None => found.push("active, never used".to_string()),
                Some(t) if (as_of_ms - t) / day_ms >= stale_days => {
                    found.push(format!("unused for {} days", (as_of_ms - t) / day_ms))
                }
                _ => {}
            }
            if let Some(t) = r {
                if (as_of_ms - t) / day_ms > 90 {
                    found.push(format!("not rotated for {} days (CIS: rotate within 90)", (as_of_ms - t) / day_ms));
                }
            }
            for x in found {
                user.push(f.get(user_i).copied().unwrap_or("").to_string());
                arn.push(get(arn_i).to_string());
                key.push(format!("access_key_{k}"));
                rotated.push(r);
                used.push(u);
                finding.push(x);
            }
        }
    }
    DataFrame::new(
        user.len(),
        vec![
            Column::new("user".into(), user),
            Column::new("arn".into(), arn),
            Column::new("key".into(), key),
            ms_column("last_rotated", rotated),
            ms_column("last_used", used),
            Column::new("finding".into(), finding),
        ],
    )
    .context("credential findings")
}
