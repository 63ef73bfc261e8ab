//! `activity`: who did what. One row per `principal` with counts, first/last seen and top services,
//! sorted by events descending, then principal. With `--principal`, breakdowns for those principals by
//! service and action, by source IP, and by day.

use polars::prelude::*;

use super::{ascending, is_error, service, Answer};
use crate::frame::col_name as c;

/// Distinct non-empty values (CloudTrail writes `""` for an absent access key, for one).
fn distinct(name: &str) -> Expr {
    col(name).filter(super::present(name)).n_unique().cast(DataType::UInt32)
}

/// How many services to name in `top_services`.
const TOP_SERVICES: usize = 3;

/// One row per principal.
pub fn per_principal(ev: LazyFrame) -> LazyFrame {
    let ev = ev.with_column(service().alias("service")).cache();
    let main = ev.clone().group_by([col(c::PRINCIPAL)]).agg([
        // The smallest value, not the first: row order differs between raw files and a store.
        col(c::IDENTITY_TYPE).min().alias("principal_type"),
        col(c::ACCOUNT_ID).min().alias(c::ACCOUNT_ID),
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
        distinct(c::SOURCE_IP).alias("source_ips"),
        distinct(c::AWS_REGION).alias("regions"),
        distinct(c::ACCESS_KEY_ID).alias("access_keys"),
        distinct(c::USER_AGENT).alias("user_agents"),
    ]);
    // Top services: count per (principal, service), best first (ties by name), keep the first few.
    let top = ev
        .group_by([col(c::PRINCIPAL), col("service")])
        .agg([len().alias("n")])
        .sort(
            [c::PRINCIPAL, "n", "service"],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true, false])
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .with_column(
            concat_str([col("service"), lit(" ("), col("n").cast(DataType::String), lit(")")], "", true).alias("entry"),
        )
        .group_by_stable([col(c::PRINCIPAL)])
        .agg([col("entry").head(Some(TOP_SERVICES)).str().join(", ", true).alias("top_services")]);
    main.join(
        top,
        [col(c::PRINCIPAL)],
        [col(c::PRINCIPAL)],
        JoinArgs { nulls_equal: true, ..JoinArgs::new(JoinType::Left) },
    )
    .sort(
        ["events", c::PRINCIPAL],
        SortMultipleOptions::default()
            .with_order_descending_multi([true, false])
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
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
