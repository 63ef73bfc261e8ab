//! `root`: root-account usage under CIS AWS Foundations semantics (CIS 1.4 §4.3 / Security Hub
//! CloudWatch.1): `userIdentity.type == "Root"`, no `userIdentity.invokedBy`, and
//! `eventType != "AwsServiceEvent"`. Rows in time order (then event_id); a summary of sign-ins, MFA,
//! access-key use and source IPs.

use polars::prelude::*;

use super::{is_console_failure, is_console_login, mfa_used, present};
use crate::ingest::frame::col_name as c;

/// The CIS root-usage condition.
pub fn is_root_usage() -> Expr {
    col(c::IDENTITY_TYPE)
        .eq(lit("Root"))
        .fill_null(lit(false))
        .and(col(c::INVOKED_BY).is_null())
        .and(col(c::EVENT_TYPE).neq_missing(lit("AwsServiceEvent")))
}

pub const COLUMNS: [&str; 13] = [
    c::EVENT_TIME,
    c::EVENT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::EVENT_NAME,
    c::EVENT_SOURCE,
    c::AWS_REGION,
    c::SOURCE_IP,
    c::USER_AGENT,
    c::ERROR_CODE,
    c::ACCESS_KEY_ID,
    c::CONSOLE_LOGIN,
    c::MFA_USED,
    c::SESSION_MFA,
];

/// Root events in time order (`sorted`: the events come in that order already).
pub fn events(ev: LazyFrame, sorted: bool) -> LazyFrame {
    super::in_time_order(ev.filter(is_root_usage()).select(COLUMNS.iter().map(|n| col(*n)).collect::<Vec<_>>()), sorted)
}

/// One row of counts: the summary the table view closes with (and `--summary` prints).
pub fn summary(ev: LazyFrame) -> LazyFrame {
    let login = is_console_login();
    let success = login.clone().and(col(c::CONSOLE_LOGIN).eq(lit("Success")).fill_null(lit(false)));
    let key = col(c::ACCESS_KEY_ID);
    let count = |e: Expr, name: &str| e.cast(DataType::UInt32).sum().alias(name);
    ev.filter(is_root_usage()).select([
        len().alias("events"),
        count(login, "console_logins"),
        count(success.clone(), "console_login_success"),
        count(is_console_failure(), "console_login_failure"),
        count(success.and(mfa_used().not()), "console_login_success_without_mfa"),
        count(present(c::ACCESS_KEY_ID), "access_key_events"),
        count(key.clone().str().starts_with(lit("AKIA")).fill_null(lit(false)), "akia_key_events"),
        count(key.str().starts_with(lit("ASIA")).fill_null(lit(false)), "asia_key_events"),
        col(c::SOURCE_IP).drop_nulls().n_unique().alias("source_ips"),
        col(c::EVENT_TIME).min().alias("first_use"),
        col(c::EVENT_TIME).max().alias("last_use"),
    ])
}
