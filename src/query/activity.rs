//! `activity`: who did what. One row per `principal` with counts, first/last seen and top services,
//! sorted by events descending, then principal. With `--principal`, breakdowns for those principals by
//! service and action, by source IP, and by day.

use polars::prelude::*;

use super::intern::{Interner, EMPTY, NONE};
use super::{ascending, is_error, service, Answer};
use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;

/// Distinct non-empty values (CloudTrail writes `""` for an absent access key, for one).
fn distinct(name: &str) -> Expr {
    col(name).filter(super::present(name)).n_unique().cast(DataType::UInt32)
}

/// The string columns `activity` (per principal, `--principal` and its breakdowns) and the shared
/// filters read: raw files fill only these (the rest stay null), which spares parsing the request
/// and response blobs and writing them to spill files. `event_time` is always filled. The first
/// eleven are those the per-principal rows read (`FOLDED_COLUMNS_READ`), the others the breakdowns'.
pub const COLUMNS_READ: &[&str] = &[
    c::PRINCIPAL,
    c::IDENTITY_TYPE,
    c::ACCOUNT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::ERROR_CODE,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::SOURCE_IP,
    c::AWS_REGION,
    c::ACCESS_KEY_ID,
    c::USER_AGENT,
    c::EVENT_ID,
    c::ARN,
    c::USER_NAME,
    c::SESSION_ISSUER_USER_NAME,
    c::PRINCIPAL_ID,
];

/// The string columns `PerPrincipal` (the per-principal rows alone) reads, and the shared filters:
/// `COLUMNS_READ`'s first eleven. From a store, only these are decoded.
pub const FOLDED_COLUMNS_READ: &[&str] = COLUMNS_READ.split_at(11).0;

/// How many services to name in `top_services`.
const TOP_SERVICES: usize = 3;

/// One row per principal.
///
/// Computed in one pass of partial aggregates folded batch by batch (`query::stream`): memory holds
/// one entry per principal with its distinct values, never the events. (As a Polars `group_by` with
/// six `n_unique`, the streaming engine's memory grew with the input: 0.61 GB at 1 M generated
/// events, 0.92 GB at 4 M, though the distinct values were a few hundred.) The semantics are those of
/// `event_aggs` and `top`, which the group sections use: counts of non-empty distinct values, the
/// smallest principal type and account, top services by count then name.
pub fn per_principal(ev: LazyFrame) -> Result<LazyFrame> {
    per_principal_with(ev, false)
}

/// `per_principal`; with `all_accounts`, every account of a row (`principals_frame`).
fn per_principal_with(ev: LazyFrame, all_accounts: bool) -> Result<LazyFrame> {
    let mut acc = PerPrincipal { all_accounts, ..Default::default() };
    // Only the columns the fold reads are decoded (the report's activity over 1 M spilled events
    // peaked 0.15 GB higher decoding every column).
    let read: Vec<Expr> = FOLDED_COLUMNS_READ.iter().chain([&c::EVENT_TIME]).map(|n| col(*n)).collect();
    super::stream(ev.select(read), |df| acc.add(df))?;
    acc.finish()
}

/// `per_principal` fed a batch of events at a time (see `dataset::fold`): the same rows whatever
/// the batches, since every aggregate merges. The text columns are folded as ids (`intern`): each
/// distinct value is hashed as text once per batch, and the per-principal sets hold integers.
#[derive(Default)]
pub struct PerPrincipal {
    /// Every account of a row instead of the smallest (`principals_frame`).
    all_accounts: bool,
    principals: Interner,
    /// By principal id; `missing` for events without a principal.
    rows: Vec<Principal>,
    missing: Option<Principal>,
    types: Interner,
    accounts: Interner,
    sources: Interner,
    names: Interner,
    services: Interner,
    /// The service id of each event source id (`service`: the source without `.amazonaws.com`).
    service_of: Vec<u32>,
    ips: Interner,
    regions: Interner,
    keys: Interner,
    agents: Interner,
    /// Each column's ids for the batch being folded, kept to reuse their allocations.
    scratch: [Vec<u32>; 9],
}

/// What `per_principal` keeps of one principal, as ids of `PerPrincipal`'s interners.
struct Principal {
    /// The smallest type and account seen (by text), `NONE` when none was.
    principal_type: u32,
    account_id: u32,
    /// Every non-empty account (`--by person|permission-set` list them all).
    accounts: hashbrown::HashSet<u32>,
    events: u32,
    errors: u32,
    first: Option<i64>,
    last: Option<i64>,
    /// Events per service id (`NONE`: no event source), but for the last run of one service, which
    /// `service_run` counts (a principal's events mostly repeat one service, and a repeat then needs
    /// no map lookup); `Principal::services` gives the sum.
    services: hashbrown::HashMap<u32, u32>,
    /// The service of the principal's latest events and how many in a row (0: none yet).
    service_run: (u32, u32),
    /// (event source, event name) pairs.
    actions: hashbrown::HashSet<(u32, u32)>,
    source_ips: hashbrown::HashSet<u32>,
    regions: hashbrown::HashSet<u32>,
    access_keys: hashbrown::HashSet<u32>,
    user_agents: hashbrown::HashSet<u32>,
    /// The value each set above took last (accounts, addresses, regions, keys, agents; then the
    /// action): a principal's events mostly repeat them, and a repeat needs no set lookup.
    added: [u32; 5],
    added_action: (u32, u32),
}

impl Default for Principal {
    fn default() -> Self {
        Principal {
            principal_type: NONE,
            account_id: NONE,
            accounts: Default::default(),
            events: 0,
            errors: 0,
            first: None,
            last: None,
            services: Default::default(),
            service_run: (NONE, 0),
            actions: Default::default(),
            source_ips: Default::default(),
            regions: Default::default(),
            access_keys: Default::default(),
            user_agents: Default::default(),
            added: [NONE; 5],
            added_action: (NONE, NONE),
        }
    }
}

impl Principal {
    /// One more event of `service`.
    fn add_service(&mut self, service: u32) {
        match self.service_run {
            (last, n) if n > 0 && last == service => self.service_run.1 += 1,
            (last, n) => {
                if n > 0 {
                    *self.services.entry(last).or_default() += n;
                }
                self.service_run = (service, 1);
            }
        }
    }

    /// Events per service id, the latest run included.
    fn services(&mut self) -> &hashbrown::HashMap<u32, u32> {
        let (last, n) = std::mem::replace(&mut self.service_run, (NONE, 0));
        if n > 0 {
            *self.services.entry(last).or_default() += n;
        }
        &self.services
    }
}

/// Keep the smaller text of `slot` and `id` (a null never replaces a value).
fn keep_min(slot: &mut u32, id: u32, values: &Interner) {
    if id != NONE && id != *slot && (*slot == NONE || values.value(id) < values.value(*slot)) {
        *slot = id;
    }
}

/// Add a non-empty value, unless it is `last`, the value this set took last (then it holds it).
fn add_present(set: &mut hashbrown::HashSet<u32>, last: &mut u32, id: u32) {
    if id != *last && id != NONE && id != EMPTY {
        set.insert(id);
        *last = id;
    }
}

/// Whether each row's text is non-empty (a null is not), from the lengths in the views.
fn non_empty(column: &StringChunked) -> Vec<bool> {
    let mut out = Vec::with_capacity(column.len());
    for (chunk, array) in column.chunks().iter().zip(column.downcast_iter()) {
        let lengths = array.views().iter().map(|view| view.length > 0);
        match chunk.validity() {
            Some(valid) => out.extend(lengths.zip(valid.iter()).map(|(long, valid)| long && valid)),
            None => out.extend(lengths),
        }
    }
    out
}

impl PerPrincipal {
    /// Fold a batch of events (frame columns).
    pub fn add(&mut self, events: DataFrame) -> Result<()> {
        self.fold(&events).context("activity")
    }

    fn fold(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let text = |name: &str| -> PolarsResult<&StringChunked> { df.column(name)?.str() };
        let [principal, ptype, account, source, name, ip, region, key, agent] = &mut self.scratch;
        self.principals.translate(text(c::PRINCIPAL)?, principal);
        self.types.translate(text(c::IDENTITY_TYPE)?, ptype);
        self.accounts.translate(text(c::ACCOUNT_ID)?, account);
        self.sources.translate(text(c::EVENT_SOURCE)?, source);
        self.names.translate(text(c::EVENT_NAME)?, name);
        self.ips.translate(text(c::SOURCE_IP)?, ip);
        self.regions.translate(text(c::AWS_REGION)?, region);
        self.keys.translate(text(c::ACCESS_KEY_ID)?, key);
        self.agents.translate(text(c::USER_AGENT)?, agent);
        let error = non_empty(text(c::ERROR_CODE)?);
        // One chunk, read by index (an iterator over chunks was a call per row).
        let time = df.column(c::EVENT_TIME)?.cast(&DataType::Int64)?;
        let time = time.i64()?.rechunk();
        let (times, valid) = match time.downcast_get(0) {
            Some(array) => (array.values().as_slice(), array.validity()),
            None => (&[][..], None),
        };
        // The service of each new event source.
        while self.service_of.len() < self.sources.len() {
            let source = self.sources.value(self.service_of.len() as u32);
            let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
            self.service_of.push(self.services.id(service));
        }
        if self.rows.len() < self.principals.len() {
            self.rows.resize_with(self.principals.len(), Principal::default);
        }
        for (i, &t) in times.iter().enumerate() {
            let t = valid.is_none_or(|v| v.get_bit(i)).then_some(t);
            let p = match principal[i] {
                NONE => self.missing.get_or_insert_with(Principal::default),
                id => &mut self.rows[id as usize],
            };
            keep_min(&mut p.principal_type, ptype[i], &self.types);
            keep_min(&mut p.account_id, account[i], &self.accounts);
            add_present(&mut p.accounts, &mut p.added[0], account[i]);
            p.events += 1;
            p.errors += u32::from(error[i]);
            if let Some(t) = t {
                p.first = Some(p.first.map_or(t, |f| f.min(t)));
                p.last = Some(p.last.map_or(t, |l| l.max(t)));
            }
            let service = match source[i] {
                NONE => NONE,
                s => self.service_of[s as usize],
            };
            p.add_service(service);
            let action = (source[i], name[i]);
            if action != p.added_action && action.0 != NONE && action.1 != NONE {
                p.actions.insert(action);
                p.added_action = action;
            }
            add_present(&mut p.source_ips, &mut p.added[1], ip[i]);
            add_present(&mut p.regions, &mut p.added[2], region[i]);
            add_present(&mut p.access_keys, &mut p.added[3], key[i]);
            add_present(&mut p.user_agents, &mut p.added[4], agent[i]);
        }
        Ok(())
    }

    /// The rows, in `per_principal`'s order.
    pub fn finish(self) -> Result<LazyFrame> {
        let text = |values: &Interner, id: u32| (id != NONE).then(|| values.value(id).to_string());
        let summary = |mut p: Principal| Summary {
            principal_type: text(&self.types, p.principal_type),
            account_id: text(&self.accounts, p.account_id),
            accounts: p.accounts.iter().map(|&a| self.accounts.value(a).to_string()).collect(),
            events: p.events,
            errors: p.errors,
            first: p.first,
            last: p.last,
            services: p.services().iter().map(|(&s, &n)| (text(&self.services, s), n)).collect(),
            // Distinct "source:name" texts, as Polars' `actions()` counts them.
            actions: p
                .actions
                .iter()
                .map(|&(s, n)| format!("{}:{}", self.sources.value(s), self.names.value(n)))
                .collect::<hashbrown::HashSet<_>>()
                .len() as u32,
            source_ips: p.source_ips.len() as u32,
            regions: p.regions.len() as u32,
            access_keys: p.access_keys.len() as u32,
            user_agents: p.user_agents.len() as u32,
        };
        let mut rows: Vec<Row> = Vec::with_capacity(self.rows.len() + 1);
        for (id, p) in self.rows.into_iter().enumerate() {
            if p.events > 0 {
                rows.push((Some(self.principals.value(id as u32).to_string()), summary(p)));
            }
        }
        if let Some(p) = self.missing {
            rows.push((None, summary(p)));
        }
        principals_frame(rows, self.all_accounts).context("activity")
    }
}

/// A principal's row before it is a frame's.
struct Summary {
    principal_type: Option<String>,
    account_id: Option<String>,
    accounts: std::collections::BTreeSet<String>,
    events: u32,
    errors: u32,
    first: Option<i64>,
    last: Option<i64>,
    /// Events per service (`None`: no event source).
    services: Vec<(Option<String>, u32)>,
    actions: u32,
    source_ips: u32,
    regions: u32,
    access_keys: u32,
    user_agents: u32,
}

/// A principal and what was kept of it.
type Row = (Option<String>, Summary);

/// Ascending, a missing value last (Polars' order with `nulls_last`).
fn nulls_last(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Greater,
        (_, None) => std::cmp::Ordering::Less,
    }
}

/// The rows, busiest principal first (then by principal, nulls last). With `all_accounts`, the
/// columns `account_count` and `accounts` (sorted, ","-joined, as `unused --by permission-set` writes
/// them) instead of `account_id`.
fn principals_frame(mut rows: Vec<Row>, all_accounts: bool) -> PolarsResult<LazyFrame> {
    rows.sort_by(|(a, pa), (b, pb)| pb.events.cmp(&pa.events).then_with(|| nulls_last(a, b)));
    let strings = |f: &dyn Fn(&Row) -> Option<String>| -> Vec<Option<String>> { rows.iter().map(f).collect() };
    let counts = |f: &dyn Fn(&Summary) -> u32| -> Vec<u32> { rows.iter().map(|(_, p)| f(p)).collect() };
    let time = |name: &str, f: &dyn Fn(&Summary) -> Option<i64>| -> PolarsResult<Column> {
        Int64Chunked::from_iter_options(name.into(), rows.iter().map(|(_, p)| f(p)))
            .into_series()
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
            .map(Column::from)
    };
    let top: Vec<Option<String>> = rows.iter().map(|(_, p)| Some(top_entries(&p.services, TOP_SERVICES))).collect();
    let n = rows.len();
    let accounts = if all_accounts {
        vec![
            Column::new("account_count".into(), counts(&|p| p.accounts.len() as u32)),
            Column::new(
                "accounts".into(),
                strings(&|(_, p)| Some(p.accounts.iter().map(String::as_str).collect::<Vec<_>>().join(","))),
            ),
        ]
    } else {
        vec![Column::new(c::ACCOUNT_ID.into(), strings(&|(_, p)| p.account_id.clone()))]
    };
    let mut columns = vec![
        Column::new(c::PRINCIPAL.into(), strings(&|(k, _)| k.clone())),
        Column::new("principal_type".into(), strings(&|(_, p)| p.principal_type.clone())),
    ];
    columns.extend(accounts);
    let df = DataFrame::new(
        n,
        columns
            .into_iter()
            .chain([
                Column::new("events".into(), counts(&|p| p.events)),
                Column::new("errors".into(), counts(&|p| p.errors)),
                time("first_seen", &|p| p.first)?,
                time("last_seen", &|p| p.last)?,
                Column::new(
                    "services".into(),
                    counts(&|p| {
                        p.services.iter().filter(|(s, _)| s.as_deref().is_some_and(|s| !s.is_empty())).count() as u32
                    }),
                ),
                Column::new("actions".into(), counts(&|p| p.actions)),
                Column::new("source_ips".into(), counts(&|p| p.source_ips)),
                Column::new("regions".into(), counts(&|p| p.regions)),
                Column::new("access_keys".into(), counts(&|p| p.access_keys)),
                Column::new("user_agents".into(), counts(&|p| p.user_agents)),
                Column::new("top_services".into(), top),
            ])
            .collect(),
    )?;
    Ok(df.lazy())
}

/// "value (count), ..." for the `n` most frequent values, ties by value (a missing value last,
/// shown as its count alone), as `top` writes them.
fn top_entries(counts: &[(Option<String>, u32)], n: usize) -> String {
    let mut v: Vec<(Option<&str>, &u32)> = counts.iter().map(|(s, n)| (s.as_deref(), n)).collect();
    // By count, then by item, a missing one last.
    v.sort_by(|(a, na), (b, nb)| {
        nb.cmp(na).then_with(|| match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
        })
    });
    v.iter().take(n).map(|(item, count)| format!("{} ({count})", item.unwrap_or(""))).collect::<Vec<_>>().join(", ")
}

/// Distinct `eventSource:eventName` pairs (rows missing either are not counted).
fn actions() -> Expr {
    concat_str([col(c::EVENT_SOURCE), col(c::EVENT_NAME)], ":", false).drop_nulls().n_unique().cast(DataType::UInt32)
}

fn breakdown(ev: &LazyFrame, keys: &[Expr], key_names: &[&str]) -> LazyFrame {
    let mut sort_keys = vec![c::PRINCIPAL];
    sort_keys.extend_from_slice(key_names);
    let mut group = vec![col(c::PRINCIPAL)];
    group.extend_from_slice(keys);
    ev.clone()
        .group_by(group)
        .agg([
            len().cast(DataType::UInt32).alias("events"),
            is_error().cast(DataType::UInt32).sum().alias("errors"),
            col(c::EVENT_TIME).min().alias("first_seen"),
            col(c::EVENT_TIME).max().alias("last_seen"),
        ])
        .sort(sort_keys, ascending(1 + key_names.len()))
}

/// The answer: per-principal rows, plus breakdowns when principals were named.
pub fn answer(ev: LazyFrame, principals: &[String]) -> Result<Answer> {
    let Some(filter) = super::principal_filter(principals) else {
        return Ok(Answer::one("principals", per_principal(ev)?));
    };
    let ev = ev.filter(filter);
    Ok(Answer::one("principals", per_principal(ev.clone())?)
        .with(
            "by_action",
            breakdown(&ev, &[service().alias("service"), col(c::EVENT_NAME)], &["service", c::EVENT_NAME]),
        )
        .with("by_source_ip", breakdown(&ev, &[col(c::SOURCE_IP)], &[c::SOURCE_IP]))
        .with("by_day", breakdown(&ev, &[col(c::EVENT_TIME).dt().strftime("%Y-%m-%d").alias("day")], &["day"])))
}

/// What `activity --by person` and `--by permission-set` key IAM Identity Center sessions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityCenterKey {
    /// The person: the role session name (the last segment of the session's `arn`), which Identity
    /// Center sets to the user's name.
    Person,
    /// The permission set: the role name `AWSReservedSSO_<PermissionSet>_<suffix>` without prefix and
    /// suffix.
    PermissionSet,
}

/// The prefix of the roles IAM Identity Center creates for a permission set in each account.
pub const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";

/// `activity --by person|permission-set`: the events of IAM Identity Center sessions (`AssumedRole`
/// whose session issuer is an `AWSReservedSSO_<PermissionSet>_<suffix>` role), one row per person or
/// permission set across accounts, with `per_principal`'s columns (the first named `person` or
/// `permission_set`) but `account_id`: a person or set spans accounts, so `account_count` counts the
/// distinct `userIdentity.accountId`s of its events (the accounts of the sessions' roles) and
/// `accounts` lists them, sorted and ","-joined. Derived from the existing columns: the issuer's
/// user name and the session ARN.
pub fn by_identity_center(ev: LazyFrame, key: IdentityCenterKey) -> Result<LazyFrame> {
    let issuer = col(c::SESSION_ISSUER_USER_NAME);
    let is_sso = col(c::IDENTITY_TYPE)
        .eq(lit("AssumedRole"))
        .and(issuer.clone().str().starts_with(lit(SSO_ROLE_PREFIX)))
        .fill_null(lit(false));
    // IdentityCenterUser calls (no role: no permission set) are the person's too, by user id.
    let is_ic_user = col(c::IDENTITY_TYPE).eq(lit("IdentityCenterUser")).fill_null(lit(false));
    let (value, name, rows) = match key {
        // The session name: what follows the last "/" of arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION;
        // for an IdentityCenterUser, `onBehalfOf.userId` (the principal is arn:...:identitystore:::user/ID).
        IdentityCenterKey::Person => (
            when(is_ic_user.clone())
                .then(col(c::PRINCIPAL).str().extract(lit(r"^arn:[^:]*:identitystore:::user/(.+)$"), 1))
                .otherwise(col(c::ARN).str().extract(lit(r"/([^/]+)$"), 1)),
            "person",
            is_sso.or(is_ic_user),
        ),
        // AWSReservedSSO_<PermissionSet>_<suffix>: the suffix is the text after the last "_".
        IdentityCenterKey::PermissionSet => {
            (issuer.str().extract(lit(r"^AWSReservedSSO_(.+)_[^_]*$"), 1), "permission_set", is_sso)
        }
    };
    let rows = per_principal_with(ev.filter(rows).with_column(value.alias(c::PRINCIPAL)), true)?;
    Ok(rows.rename([c::PRINCIPAL], [name], true))
}

/// IAM groups and their members, from the snapshot (`--iam`), for `activity --by group`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Every group: (name, ARN). A group a user names but the snapshot lacks has an empty ARN.
    pub groups: Vec<(String, String)>,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone)]
pub struct GroupMember {
    pub group: String,
    pub group_arn: String,
    pub user_name: String,
    pub user_arn: String,
    pub user_id: String,
}

/// The groups of the snapshot with their members (each user's `GroupList`, matched in its account).
pub fn group_members(az: &crate::iam::authz::AuthorizationDetails) -> Groups {
    let mut out = Groups {
        groups: az.group_detail_list.iter().map(|g| (g.group_name.clone(), g.arn.clone())).collect(),
        members: Vec::new(),
    };
    for u in &az.user_detail_list {
        for g in &u.group_list {
            let arn = az.group(g, &u.arn).map(|x| x.arn.clone()).unwrap_or_default();
            if arn.is_empty() && !out.groups.iter().any(|(n, a)| n == g && a.is_empty()) {
                out.groups.push((g.clone(), String::new()));
            }
            out.members.push(GroupMember {
                group: g.clone(),
                group_arn: arn,
                user_name: u.user_name.clone(),
                user_arn: u.arn.clone(),
                user_id: u.user_id.clone(),
            });
        }
    }
    out
}

/// The aggregates of a set of events shared by the group sections (the same as `per_principal`'s).
fn event_aggs() -> Vec<Expr> {
    vec![
        len().cast(DataType::UInt32).alias("events"),
        is_error().cast(DataType::UInt32).sum().alias("errors"),
        col(c::EVENT_TIME).min().alias("first_seen"),
        col(c::EVENT_TIME).max().alias("last_seen"),
        distinct("service").alias("services"),
        actions().alias("actions"),
    ]
}

/// The `n` most frequent values of `item` per `keys`, as "value (count), ..." (ties by value).
fn top(ev: &LazyFrame, keys: &[&str], item: Expr, n: usize, alias: &str) -> LazyFrame {
    let mut group: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    group.push(item.alias("_item"));
    let mut sort_keys: Vec<&str> = keys.to_vec();
    sort_keys.extend(["_n", "_item"]);
    let mut desc = vec![false; keys.len()];
    desc.extend([true, false]);
    ev.clone()
        .group_by(group)
        .agg([len().alias("_n")])
        .sort(sort_keys, super::order(desc))
        .with_column(
            concat_str([col("_item"), lit(" ("), col("_n").cast(DataType::String), lit(")")], "", true).alias("_entry"),
        )
        .group_by_stable(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .agg([col("_entry").head(Some(n)).str().join(", ", true).alias(alias)])
}

fn left(keys: &[&str]) -> (Vec<Expr>, Vec<Expr>, JoinArgs) {
    let k: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    (k.clone(), k, JoinArgs { nulls_equal: true, ..JoinArgs::new(JoinType::Left) })
}

/// How many actions to name in `top_actions`.
const TOP_ACTIONS: usize = 5;

/// `activity --by group`: per IAM group of the snapshot, its members and what they did. Sections:
/// `groups` (one row per group, busiest first), `members` (one row per group and member, with zero
/// rows for members without events), `by_action` (per group, service and event name). A user in two
/// groups counts in both. Events are a member's when their `principal` is the user's ARN or id.
pub fn by_group(ev: LazyFrame, groups: &Groups) -> PolarsResult<Answer> {
    let strs = |f: fn(&GroupMember) -> &String| groups.members.iter().map(f).cloned().collect::<Vec<String>>();
    let members = DataFrame::new(
        groups.members.len(),
        vec![
            Column::new("group".into(), strs(|m| &m.group)),
            Column::new("group_arn".into(), strs(|m| &m.group_arn)),
            Column::new("member".into(), strs(|m| &m.user_arn)),
            Column::new("user_name".into(), strs(|m| &m.user_name)),
            Column::new("_arn".into(), strs(|m| &m.user_arn)),
            Column::new("_id".into(), strs(|m| &m.user_id)),
        ],
    )?
    .lazy();
    // One lookup row per identifier a member's events may carry as `principal`.
    let keys = concat(
        [
            members.clone().select([col("group"), col("group_arn"), col("member"), col("_arn").alias("_key")]),
            members.clone().select([col("group"), col("group_arn"), col("member"), col("_id").alias("_key")]),
        ],
        UnionArgs::default(),
    )?
    .unique_stable(None, UniqueKeepStrategy::First);
    let tagged = ev
        .with_column(service().alias("service"))
        .join(keys, [col(c::PRINCIPAL)], [col("_key")], JoinArgs::new(JoinType::Inner))
        .cache();
    let group_list = DataFrame::new(
        groups.groups.len(),
        vec![
            Column::new("group".into(), groups.groups.iter().map(|g| g.0.clone()).collect::<Vec<_>>()),
            Column::new("group_arn".into(), groups.groups.iter().map(|g| g.1.clone()).collect::<Vec<_>>()),
        ],
    )?
    .lazy();
    let gk = ["group", "group_arn"];
    let mk = ["group", "group_arn", "member"];

    // Members: every membership, with its events (zero when none).
    let member_rows = members
        .clone()
        .select([col("group"), col("group_arn"), col("member"), col("user_name")])
        .unique_stable(None, UniqueKeepStrategy::First);
    let (l, r, args) = left(&mk);
    let (l2, r2, args2) = left(&mk);
    let member_stats = member_rows
        .join(tagged.clone().group_by(mk.map(col)).agg(event_aggs()), l, r, args)
        .join(top(&tagged, &mk, col("service"), TOP_SERVICES, "top_services"), l2, r2, args2)
        .with_columns([
            col("events").fill_null(lit(0u32)),
            col("errors").fill_null(lit(0u32)),
            col("services").fill_null(lit(0u32)),
            col("actions").fill_null(lit(0u32)),
        ])
        .sort(["group", "group_arn", "events", "member"], super::order([false, false, true, false]))
        .cache();

    // Groups: members, active members, and the events of all members.
    let counts = member_stats.clone().group_by(gk.map(col)).agg([
        len().cast(DataType::UInt32).alias("members"),
        col("events").gt(lit(0u32)).cast(DataType::UInt32).sum().alias("active_members"),
    ]);
    let action = concat_str([col("service"), col(c::EVENT_NAME)], ":", false);
    let (l1, r1, a1) = left(&gk);
    let (l2, r2, a2) = left(&gk);
    let (l3, r3, a3) = left(&gk);
    let (l4, r4, a4) = left(&gk);
    let group_rows = group_list
        .join(counts, l1, r1, a1)
        .join(tagged.clone().group_by(gk.map(col)).agg(event_aggs()), l2, r2, a2)
        .join(top(&tagged, &gk, col("service"), TOP_SERVICES, "top_services"), l3, r3, a3)
        .join(top(&tagged, &gk, action, TOP_ACTIONS, "top_actions"), l4, r4, a4)
        .with_columns(
            ["members", "active_members", "events", "errors", "services", "actions"]
                .map(|n| col(n).fill_null(lit(0u32))),
        )
        .sort(["events", "group", "group_arn"], super::order([true, false, false]));

    let by_action = tagged
        .group_by([col("group"), col("group_arn"), col("service"), col(c::EVENT_NAME)])
        .agg([
            len().cast(DataType::UInt32).alias("events"),
            is_error().cast(DataType::UInt32).sum().alias("errors"),
            col("member").n_unique().cast(DataType::UInt32).alias("members"),
            col(c::EVENT_TIME).min().alias("first_seen"),
            col(c::EVENT_TIME).max().alias("last_seen"),
        ])
        .sort(
            ["group", "group_arn", "events", "service", c::EVENT_NAME],
            super::order([false, false, true, false, false]),
        );
    Ok(Answer::one("groups", group_rows).with("members", member_stats).with("by_action", by_action))
}
