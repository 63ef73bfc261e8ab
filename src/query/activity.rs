//! `activity`: who did what. One row per `principal` with counts, first/last seen and top services,
//! sorted by events descending, then principal. With `--principal`, breakdowns for those principals by
//! service and action, by source IP, and by day.

use polars::prelude::*;

use super::{ascending, is_error, service, Answer};
use crate::ingest::frame::col_name as c;

/// Distinct non-empty values (CloudTrail writes `""` for an absent access key, for one).
fn distinct(name: &str) -> Expr {
    col(name).filter(super::present(name)).n_unique().cast(DataType::UInt32)
}

/// How many services to name in `top_services`.
const TOP_SERVICES: usize = 3;

/// One row per principal.
pub fn per_principal(ev: LazyFrame) -> LazyFrame {
    let ev = ev.with_column(service().alias("service")).cache();
    let mut aggs = vec![
        // The smallest value, not the first: row order differs between raw files and a store.
        col(c::IDENTITY_TYPE).min().alias("principal_type"),
        col(c::ACCOUNT_ID).min().alias(c::ACCOUNT_ID),
    ];
    aggs.extend(event_aggs());
    aggs.extend([
        distinct(c::SOURCE_IP).alias("source_ips"),
        distinct(c::AWS_REGION).alias("regions"),
        distinct(c::ACCESS_KEY_ID).alias("access_keys"),
        distinct(c::USER_AGENT).alias("user_agents"),
    ]);
    let main = ev.clone().group_by([col(c::PRINCIPAL)]).agg(aggs);
    let top_services = top(&ev, &[c::PRINCIPAL], col("service"), TOP_SERVICES, "top_services");
    let (l, r, args) = left(&[c::PRINCIPAL]);
    main.join(top_services, l, r, args).sort(["events", c::PRINCIPAL], super::order([true, false]))
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
pub fn answer(ev: LazyFrame, principals: &[String]) -> Answer {
    let Some(filter) = super::principal_filter(principals) else {
        return Answer::one("principals", per_principal(ev));
    };
    let ev = ev.filter(filter).cache();
    Answer::one("principals", per_principal(ev.clone()))
        .with(
            "by_action",
            breakdown(&ev, &[service().alias("service"), col(c::EVENT_NAME)], &["service", c::EVENT_NAME]),
        )
        .with("by_source_ip", breakdown(&ev, &[col(c::SOURCE_IP)], &[c::SOURCE_IP]))
        .with("by_day", breakdown(&ev, &[col(c::EVENT_TIME).dt().strftime("%Y-%m-%d").alias("day")], &["day"]))
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
        concat_str([col(c::EVENT_SOURCE), col(c::EVENT_NAME)], ":", false)
            .drop_nulls()
            .n_unique()
            .cast(DataType::UInt32)
            .alias("actions"),
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
