//! `failures`: failed and denied requests, grouped by principal, event_source, event_name and
//! error_code (plus, with `--denied`, why the request was denied), with count, first/last seen and a
//! sample message; sorted by count descending, then the keys. Console sign-in failures are a section
//! of their own.

use polars::prelude::*;

use crate::error::PolarsContext;

use super::spill::{Collected, TimeOrderedRows};
use super::{ascending, is_console_failure, is_denied, is_error, Answer};
use crate::ingest::frame::col_name as c;

/// The string columns `failures` reads from raw files (and the filters': the identity columns are
/// always filled).
pub const COLUMNS_READ: &[&str] = &[
    c::PRINCIPAL,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::ERROR_CODE,
    c::ERROR_MESSAGE,
    c::EVENT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::ACCOUNT_ID,
    c::AWS_REGION,
    c::USER_NAME,
    c::SOURCE_IP,
    c::USER_AGENT,
    c::MFA_USED,
    c::CONSOLE_LOGIN,
];

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
    let (partial, sort_keys, desc) = partial_groups(ev, denied_only);
    partial.sort(sort_keys, super::order(desc))
}

/// What failures are grouped by.
fn group_keys(denied_only: bool) -> Vec<&'static str> {
    let mut keys = vec![c::PRINCIPAL, c::EVENT_SOURCE, c::EVENT_NAME, c::ERROR_CODE];
    if denied_only {
        keys.extend(["denial", "policy_type"]);
    }
    keys
}

/// The groups of `grouped` before sorting, with the sort keys and directions.
fn partial_groups(ev: LazyFrame, denied_only: bool) -> (LazyFrame, Vec<&'static str>, Vec<bool>) {
    let key_names = group_keys(denied_only);
    let keys: Vec<Expr> = key_names.iter().map(|k| col(*k)).collect();
    let ev = if denied_only {
        ev.filter(is_denied()).with_columns([denial_kind(), denial_policy()])
    } else {
        ev.filter(is_error())
    };
    let mut sort_keys = vec!["count"];
    sort_keys.extend(key_names.iter().copied());
    let mut desc = vec![true];
    desc.extend(std::iter::repeat_n(false, key_names.len()));
    let groups = ev.group_by(keys).agg([
        len().cast(DataType::UInt32).alias("count"),
        col(c::EVENT_TIME).min().alias("first_seen"),
        col(c::EVENT_TIME).max().alias("last_seen"),
        // The smallest message: `min` skips nulls as the SQL pack's does, and is a running aggregate,
        // where sorting each group's messages to take the first held every message of every group
        // (`failures` from a 10 M-event store: see README, Performance).
        col(c::ERROR_MESSAGE).min().alias("sample_error_message"),
    ]);
    (groups, sort_keys, desc)
}

/// `answer` fed a batch of events at a time (see `dataset::fold`): each batch's failures are grouped
/// and the groups merged (counts add up; first and last seen, and the sample message, the smallest
/// of either side), and the console sign-in failures kept as rows: held up to a sixteenth of the
/// memory limit, spilled past it (`spill::TimeOrderedRows`). Memory holds the groups and a bounded
/// part of those rows, not the events.
pub struct FailuresFold {
    denied_only: bool,
    groups: Option<DataFrame>,
    /// The failed console sign-ins, a row output (`console_sign_in_failures`).
    console: TimeOrderedRows,
}

impl FailuresFold {
    /// `memory_limit`: `--memory-limit`; the console sign-in failures held take at most a
    /// sixteenth of it.
    pub fn new(denied_only: bool, memory_limit: u64) -> Self {
        FailuresFold { denied_only, groups: None, console: TimeOrderedRows::new(memory_limit / 16, memory_limit) }
    }

    pub fn add(&mut self, events: DataFrame) -> crate::error::Result<()> {
        let batch = partial_groups(events.clone().lazy(), self.denied_only).0;
        let merged = match self.groups.take() {
            None => batch,
            Some(before) => {
                merge(concat([before.lazy(), batch], UnionArgs::default()).context("failures")?, self.denied_only)
            }
        };
        self.groups = Some(super::spill::owned(merged.collect().context("failures")?).context("failures")?);
        let console = console_rows(events.lazy()).collect().context("failures")?;
        self.console.add(console)
    }

    pub fn finish(self) -> crate::error::Result<Answer> {
        let (none, sort_keys, desc) = partial_groups(crate::ingest::frame::empty()?.lazy(), self.denied_only);
        let groups = self.groups.map_or(none, DataFrame::lazy).sort(sort_keys, super::order(desc));
        let mut spills = Vec::new();
        let console = match self.console.finish()? {
            Collected::Held(Some(rows)) => sort_console(rows.lazy()),
            Collected::Held(None) => sort_console(console_rows(crate::ingest::frame::empty()?.lazy())),
            // In (event_time, event_id) order already, as `sort_console` sorts.
            Collected::Spilled(spilled) => {
                let rows = spilled.scan()?;
                spills.push(std::sync::Arc::new(spilled));
                rows
            }
        };
        let mut answer = Answer::one("failures", groups).with("console_sign_in_failures", console);
        answer.spills = spills;
        Ok(answer)
    }
}

/// Groups of `partial_groups` merged by their keys.
fn merge(groups: LazyFrame, denied_only: bool) -> LazyFrame {
    let keys: Vec<Expr> = group_keys(denied_only).iter().map(|k| col(*k)).collect();
    groups.group_by(keys).agg([
        col("count").sum().cast(DataType::UInt32).alias("count"),
        col("first_seen").min().alias("first_seen"),
        col("last_seen").max().alias("last_seen"),
        col("sample_error_message").min().alias("sample_error_message"),
    ])
}

/// Failed console sign-ins, in time order.
pub fn console_failures(ev: LazyFrame) -> LazyFrame {
    sort_console(console_rows(ev))
}

fn sort_console(rows: LazyFrame) -> LazyFrame {
    rows.sort([c::EVENT_TIME, c::EVENT_ID], ascending(2))
}

/// The failed console sign-ins' columns, unsorted.
fn console_rows(ev: LazyFrame) -> LazyFrame {
    ev.filter(is_console_failure()).select([
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
}

pub fn answer(ev: LazyFrame, denied_only: bool) -> Answer {
    Answer::one("failures", grouped(ev.clone(), denied_only)).with("console_sign_in_failures", console_failures(ev))
}
