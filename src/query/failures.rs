//! `failures`: failed and denied requests, grouped by principal, event_source, event_name and
//! error_code (plus, with `--denied`, why the request was denied), with count, first/last seen and a
//! sample message; sorted by count descending, then the keys. Console sign-in failures are a section
//! of their own.

use polars::prelude::*;

use super::{ascending, is_console_failure, is_denied, is_error, Answer};
use crate::ingest::frame::col_name as c;

/// Phrases in AWS's authorization error messages and what they say: (needle, denial, policy type).
/// Messages look like "... is not authorized to perform: s3:GetObject ... with an explicit deny in a
/// service control policy" or "... because no identity-based policy allows the ... action".
const DENIAL_PHRASES: [(&str, &str, &str); 14] = [
    ("explicit deny in a service control policy", "explicit_deny", "scp"),
    ("explicit deny in a resource control policy", "explicit_deny", "rcp"),
    ("explicit deny in an identity-based policy", "explicit_deny", "identity"),
    ("explicit deny in a resource-based policy", "explicit_deny", "resource"),
    ("explicit deny in a permissions boundary", "explicit_deny", "boundary"),
    ("explicit deny in a session policy", "explicit_deny", "session"),
    ("explicit deny in a vpc endpoint policy", "explicit_deny", "vpc_endpoint"),
    ("no service control policy allows", "no_allow", "scp"),
    ("no resource control policy allows", "no_allow", "rcp"),
    ("no identity-based policy allows", "no_allow", "identity"),
    ("no resource-based policy allows", "no_allow", "resource"),
    ("no permissions boundary allows", "no_allow", "boundary"),
    ("no session policy allows", "no_allow", "session"),
    ("no vpc endpoint policy allows", "no_allow", "vpc_endpoint"),
];

/// Classify a message column: which kind of denial and which policy type, null when unsaid.
fn classify(pick: usize) -> Expr {
    let msg = col(c::ERROR_MESSAGE).str().to_lowercase();
    let mut out = lit(NULL).cast(DataType::String);
    for (needle, denial, policy) in DENIAL_PHRASES.iter().rev() {
        let value = if pick == 0 { *denial } else { *policy };
        out = when(msg.clone().str().contains_literal(lit(*needle)).fill_null(lit(false)))
            .then(lit(value))
            .otherwise(out);
    }
    out
}

pub fn denial_kind() -> Expr {
    classify(0).alias("denial")
}

pub fn denial_policy() -> Expr {
    classify(1).alias("policy_type")
}

/// Grouped failures.
pub fn grouped(ev: LazyFrame, denied_only: bool) -> LazyFrame {
    let mut keys = vec![col(c::PRINCIPAL), col(c::EVENT_SOURCE), col(c::EVENT_NAME), col(c::ERROR_CODE)];
    let mut key_names = vec![c::PRINCIPAL, c::EVENT_SOURCE, c::EVENT_NAME, c::ERROR_CODE];
    let ev = if denied_only {
        keys.extend([col("denial"), col("policy_type")]);
        key_names.extend(["denial", "policy_type"]);
        ev.filter(is_denied()).with_columns([denial_kind(), denial_policy()])
    } else {
        ev.filter(is_error())
    };
    let mut sort_keys = vec!["count"];
    sort_keys.extend(key_names.iter().copied());
    let mut desc = vec![true];
    desc.extend(std::iter::repeat_n(false, key_names.len()));
    ev.group_by(keys)
        .agg([
            len().cast(DataType::UInt32).alias("count"),
            col(c::EVENT_TIME).min().alias("first_seen"),
            col(c::EVENT_TIME).max().alias("last_seen"),
            col(c::ERROR_MESSAGE).drop_nulls().sort(Default::default()).first().alias("sample_error_message"),
        ])
        .sort(sort_keys, super::order(desc))
}

/// Failed console sign-ins, in time order.
pub fn console_failures(ev: LazyFrame) -> LazyFrame {
    ev.filter(is_console_failure())
        .select([
            col(c::EVENT_TIME),
            col(c::EVENT_ID),
            col(c::RECIPIENT_ACCOUNT_ID),
            col(c::USER_NAME),
            col(c::PRINCIPAL),
            col(c::SOURCE_IP),
            col(c::USER_AGENT),
            col(c::ERROR_MESSAGE),
            col(c::MFA_USED),
        ])
        .sort([c::EVENT_TIME, c::EVENT_ID], ascending(2))
}

pub fn answer(ev: LazyFrame, denied_only: bool) -> Answer {
    Answer::one("failures", grouped(ev.clone(), denied_only)).with("console_sign_in_failures", console_failures(ev))
}
