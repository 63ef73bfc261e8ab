//! `detect`: built-in checks. The CIS AWS Foundations Benchmark monitoring controls (v1.4.0 section
//! 4.1-4.15; the same metric filters back AWS Security Hub's CloudWatch.1-14) with the exact event
//! lists and conditions of their metric filters, plus detections responders expect. Every check is one
//! entry of `CHECKS`; each finding is one event row.
//!
//! **The checks are Sigma rules** where a single event decides: one file per check in
//! `src/query/checks/` (embedded in the binary, `BUILTIN`), with the check's id, title, level, ATT&CK
//! tags and citation, evaluated by `crate::sigma` on the record `query::record` rebuilds, as `hunt`
//! evaluates any rule. They compare case-sensitively (`|cased`) where the metric filters do. What a
//! single event cannot decide stays here in Rust: the sequence check (`TS-DENIED-THEN-SUCCEEDED`) and
//! the checks built from the command's flags (`TS-OUTSIDE-NETWORK`, `TS-OUTSIDE-HOURS`); so does the
//! reporting of a failed tampering or credential call as an attempt (`ATTEMPTS`).

use crate::query::Run;
use std::net::IpAddr;
use std::sync::LazyLock;

use polars::prelude::*;
use rayon::prelude::*;

use super::findings::{self, field, Detector, Emitter, Finding, HitEvent, HitRuns, Outcome, Shape};
use super::record::{columns_read, needed_fields, Batch};
use super::timeline::IpNet;
use crate::error::PolarsContext;
use crate::ingest::frame::col_name as c;
use crate::sigma::{self, Loaded};

/// The built-in checks that are Sigma rules: (file name under `src/query/checks/`, text), sorted by
/// name. `hunt --rules src/query/checks` (a checkout's copy) runs them as rules.
pub const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_checks.rs"));

/// How a check selects events.
pub enum Rule {
    /// A Sigma rule of `BUILTIN` (with its file name), matched against each event's record.
    Sigma { file: &'static str, rule: Box<sigma::Rule> },
    /// A sequence across events, followed in time order (see `Sequence`).
    Sequence(Sequence),
    /// A condition built from the command's parameters (`PARAMETERIZED`); skipped without them.
    Parameterized,
}

/// Rules over the order of events, kept as state while the events go by in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// At least `DENIED_THRESHOLD` authorization failures by a principal, then a call of theirs that
    /// succeeded: the first such call, once per principal.
    DeniedThenSucceeded,
}

pub struct Check {
    pub id: String,
    pub title: String,
    pub severity: String,
    /// Where the definition comes from (a rule's `references`).
    pub reference: String,
    pub rule: Rule,
}

/// The check ids in report order (`--list`, the report). Each is a file of `BUILTIN` or an entry of
/// `IN_RUST`.
const ORDER: &[&str] = &[
    "CIS-4.1",
    "CIS-4.2",
    "CIS-4.3",
    "CIS-4.4",
    "CIS-4.5",
    "CIS-4.6",
    "CIS-4.7",
    "CIS-4.8",
    "CIS-4.9",
    "CIS-4.10",
    "CIS-4.11",
    "CIS-4.12",
    "CIS-4.13",
    "CIS-4.14",
    "CIS-4.15",
    "TS-TRAIL-TAMPER",
    "TS-ROOT-ACCESS-KEY",
    "TS-CRED-FOR-OTHER-USER",
    "TS-DENIED-THEN-SUCCEEDED",
    "TS-NO-MFA-SESSION",
    "TS-SSM-SESSION",
    "TS-OUTSIDE-NETWORK",
    "TS-OUTSIDE-HOURS",
];

/// The checks no single event decides, which stay in Rust: (id, title, severity, reference, rule).
const IN_RUST: &[(&str, &str, &str, &str, Rule)] = &[
    (
        "TS-DENIED-THEN-SUCCEEDED",
        "Principal denied many times, then succeeded",
        "high",
        "trailscope: at least 5 authorization failures, then a successful call by the same principal",
        Rule::Sequence(Sequence::DeniedThenSucceeded),
    ),
    (
        "TS-OUTSIDE-NETWORK",
        "Call from outside the allowed networks",
        "medium",
        "trailscope: sourceIPAddress (an IP address) outside every --allowed-cidr, not made by a service \
         (no invokedBy, not AwsServiceEvent); skipped without --allowed-cidr",
        Rule::Parameterized,
    ),
    (
        "TS-OUTSIDE-HOURS",
        "Call outside the allowed hours",
        "low",
        "trailscope: eventTime outside every --allowed-hours window (days, hours, fixed UTC offset), not \
         made by a service (no invokedBy, not AwsServiceEvent); skipped without --allowed-hours",
        Rule::Parameterized,
    ),
];

/// The checks, in report order (`ORDER`). Adding a single-event check is adding a rule file to
/// `src/query/checks/` and its id to `ORDER`.
pub static CHECKS: LazyLock<Vec<Check>> = LazyLock::new(|| match load_checks() {
    Ok(checks) => checks,
    // The files are part of the source; a test loads them.
    Err(e) => panic!("the built-in checks in src/query/checks/ do not load: {e}"),
});

/// One built-in rule file as a check.
fn builtin_check(file: &'static str, text: &str) -> Result<Check, String> {
    let mut loaded = sigma::load_rules(text).into_iter();
    let rule = match (loaded.next(), loaded.next()) {
        (Some(Ok(Loaded::Rule(rule))), None) => rule,
        (Some(Err(e)), _) => return Err(format!("{file}: {e}")),
        _ => return Err(format!("{file}: one detection rule expected")),
    };
    let meta = &rule.meta;
    let id = meta.id.clone().ok_or_else(|| format!("{file}: no id"))?;
    let severity = meta.level.ok_or_else(|| format!("{file}: no level"))?.to_string();
    Ok(Check {
        id,
        title: meta.title.clone(),
        severity,
        reference: meta.references.join("; "),
        rule: Rule::Sigma { file, rule: Box::new(rule) },
    })
}

fn load_checks() -> Result<Vec<Check>, String> {
    let mut found: Vec<Check> =
        BUILTIN.iter().map(|(file, text)| builtin_check(file, text)).collect::<Result<_, _>>()?;
    for (id, title, severity, reference, rule) in IN_RUST {
        let rule = match rule {
            Rule::Sequence(s) => Rule::Sequence(*s),
            _ => Rule::Parameterized,
        };
        found.push(Check {
            id: id.to_string(),
            title: title.to_string(),
            severity: severity.to_string(),
            reference: reference.to_string(),
            rule,
        });
    }
    let mut out = Vec::with_capacity(ORDER.len());
    for id in ORDER {
        let at = found.iter().position(|k| k.id == *id).ok_or_else(|| format!("no check {id}"))?;
        out.push(found.swap_remove(at));
    }
    if let Some(k) = found.first() {
        return Err(format!("check {} is not in detect::ORDER (or its id is used twice)", k.id));
    }
    Ok(out)
}

/// Checks of tampering and credential calls: one that failed is reported as an attempt (title
/// "Attempted: ...") with this severity, not as the act.
pub const ATTEMPTS: &[(&str, &str)] =
    &[("TS-TRAIL-TAMPER", "medium"), ("TS-ROOT-ACCESS-KEY", "high"), ("TS-CRED-FOR-OTHER-USER", "medium")];

/// The title prefix of an attempt.
pub const ATTEMPT_PREFIX: &str = "Attempted: ";

/// Denials needed before a success is reported.
const DENIED_THRESHOLD: u32 = 5;

/// Calls a principal made itself: not on its behalf by a service, not a service event (`own_call`,
/// row by row).
fn is_own_call(invoked_by: Option<&str>, event_type: Option<&str>) -> bool {
    invoked_by.is_none() && event_type != Some("AwsServiceEvent")
}

/// Each principal's own authorization failures, counted over the events a `detect` run checks: a
/// principal with fewer than `DENIED_THRESHOLD` has no TS-DENIED-THEN-SUCCEEDED finding, so with
/// this count (`Detection::only_principals`) the sequence check leaves their calls out of the hit
/// runs. In one pass over events in any order it cannot know that, and keeps every success of a
/// principal not yet denied five times: on accounts where few principals are ever denied, most of
/// the events. From a store this pass reads the rows with an error code, four columns of them
/// (`of`); over raw files it would read them all twice, so `detect` counts first only from a store.
#[derive(Default)]
pub struct Denials {
    counts: hashbrown::HashMap<String, u32>,
}

impl Denials {
    /// The columns `add` reads.
    const COLUMNS: [&'static str; 4] = [c::PRINCIPAL, c::ERROR_CODE, c::INVOKED_BY, c::EVENT_TYPE];

    /// The rows of `events` that may be failures, with the columns `add` reads.
    pub fn of(events: LazyFrame) -> LazyFrame {
        events.filter(super::is_error()).select(Self::COLUMNS.map(col))
    }

    /// Count a batch's failures (any order), as `Detection::add` tells them.
    pub fn add(&mut self, df: DataFrame) -> crate::error::Result<()> {
        let text = |name: &str| -> crate::error::Result<super::record::Texts> {
            Ok(super::record::Texts::of(df.column(name).context(name)?.str().context(name)?))
        };
        let [principal, error, invoked_by, event_type] = Self::COLUMNS.map(text);
        let (principal, error, invoked_by, event_type) = (principal?, error?, invoked_by?, event_type?);
        for row in 0..df.height() {
            let Some(who) = principal.get(row).filter(|p| !p.is_empty()) else { continue };
            if is_own_call(invoked_by.get(row), event_type.get(row))
                && findings::outcome(error.get(row)) == Outcome::Denied
            {
                *self.counts.entry_ref(who).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// The principals denied at least `DENIED_THRESHOLD` times.
    pub fn principals(self) -> hashbrown::HashSet<String> {
        self.counts.into_iter().filter(|(_, n)| *n >= DENIED_THRESHOLD).map(|(who, _)| who).collect()
    }
}

/// Calls a principal made itself: not on its behalf by a service, not a service event.
fn own_call() -> Expr {
    col(c::INVOKED_BY).is_null().and(col(c::EVENT_TYPE).neq_missing(lit("AwsServiceEvent")))
}

/// A check that needs parameters: its entry in `CHECKS` has the rule `Parameterized`, and `condition`
/// builds its row condition from the parameters, or returns `None` (the check is skipped) when the
/// flag `needs` was not given.
pub struct Parameterized {
    pub id: &'static str,
    pub needs: &'static str,
    pub condition: fn(&LazyFrame, &Params) -> PolarsResult<Option<Expr>>,
}

/// The checks that need parameters (each also has its entry in `CHECKS`).
pub const PARAMETERIZED: &[Parameterized] = &[
    Parameterized { id: "TS-OUTSIDE-NETWORK", needs: "--allowed-cidr", condition: outside_network },
    Parameterized { id: "TS-OUTSIDE-HOURS", needs: "--allowed-hours", condition: outside_hours },
];

/// The parameters of the checks that need some (`PARAMETERIZED`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// `--allowed-cidr`: the networks calls are expected from.
    pub allowed_cidrs: Vec<IpNet>,
    /// `--allowed-hours`: the windows calls are expected in.
    pub allowed_hours: Vec<Hours>,
}

/// A weekly window of allowed hours: `Mon-Fri 07:00-19:00 +02:00`. Days are English three-letter
/// names, as a range (`Mon-Fri`, `Fri-Mon` wraps) or a comma list (`Mon,Wed,Fri`), or `daily`; times
/// are `HH:MM-HH:MM` (end exclusive, `24:00` allowed; an end before the start runs past midnight);
/// the zone is a fixed offset from UTC (`UTC`, `Z`, `+02:00`, `-0530`, `UTC+2`; default UTC). Names
/// such as `Europe/Paris` are refused: trailscope has no time-zone database, and a fixed offset does
/// not follow daylight saving time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Allowed days, Monday = 0.
    pub days: [bool; 7],
    /// Minutes after local midnight: start inclusive, end exclusive.
    pub start: u32,
    pub end: u32,
    /// Local time minus UTC, in minutes.
    pub offset_minutes: i32,
    /// The text it was parsed from.
    pub text: String,
}

const DAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// A day by its English name or three-letter abbreviation, Monday = 0.
fn day_index(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    DAY_NAMES.iter().position(|d| *d == s || (s.len() == 3 && d.starts_with(&s)))
}

fn parse_days(s: &str) -> Option<[bool; 7]> {
    let mut days = [false; 7];
    if matches!(s.to_ascii_lowercase().as_str(), "daily" | "*" | "all") {
        return Some([true; 7]);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day_index(part)?] = true,
        }
    }
    Some(days)
}

fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// A fixed UTC offset in minutes: `UTC`, `Z`, `GMT`, `+02:00`, `-0530`, `+2`, optionally after `UTC`.
fn parse_offset(s: &str) -> Option<i32> {
    let upper = s.to_ascii_uppercase();
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
    if rest.is_empty() || rest == "Z" {
        return Some(0);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && !digits.is_empty()).then_some(sign * (h * 60 + m))
}

impl std::str::FromStr for Hours {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            crate::error::Error::Usage(format!(
                "--allowed-hours {s:?}: {why} (expected e.g. \"Mon-Fri 07:00-19:00 +02:00\": days, HH:MM-HH:MM, a fixed \
                 UTC offset)"
            ))
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        let (days, range, zone) = match parts.as_slice() {
            [d, r] => (*d, *r, "UTC"),
            [d, r, z] => (*d, *r, *z),
            _ => return Err(bad("three parts are expected")),
        };
        let days = parse_days(days).ok_or_else(|| bad("days must be names like Mon-Fri or Mon,Wed,Fri"))?;
        let (a, b) = range.split_once('-').ok_or_else(|| bad("hours must be HH:MM-HH:MM"))?;
        let (start, end) = (parse_clock(a), parse_clock(b));
        let (Some(start), Some(end)) = (start, end) else { return Err(bad("hours must be HH:MM-HH:MM")) };
        if start == end {
            return Err(bad("the window is empty"));
        }
        let offset_minutes = parse_offset(zone).ok_or_else(|| {
            if zone.contains('/') {
                bad("time zone names need a time-zone database trailscope does not ship; give the fixed offset, \
                     e.g. +02:00 (it does not follow daylight saving time)")
            } else {
                bad("the zone must be UTC or a fixed offset such as +02:00")
            }
        })?;
        Ok(Hours { days, start, end, offset_minutes, text: s.to_string() })
    }
}

impl Hours {
    /// Is the event time inside this window?
    fn contains(&self) -> Expr {
        const DAY_MS: i64 = 86_400_000;
        let local = col(c::EVENT_TIME).cast(DataType::Int64) + lit(i64::from(self.offset_minutes) * 60_000);
        let day = local.clone().floor_div(lit(DAY_MS));
        // 1970-01-01 was a Thursday (Monday = 0 → 3).
        let weekday = (day.clone() + lit(3i64)) - (day + lit(3i64)).floor_div(lit(7i64)) * lit(7i64);
        let minute = (local.clone() - local.floor_div(lit(DAY_MS)) * lit(DAY_MS)).floor_div(lit(60_000i64));
        let on = |shift: i64| {
            let list: Vec<i64> = (0..7).filter(|d| self.days[*d as usize]).collect();
            let wd = if shift == 0 {
                weekday.clone()
            } else {
                let w = weekday.clone() + lit(7 - shift);
                w.clone() - w.floor_div(lit(7i64)) * lit(7i64)
            };
            wd.is_in(lit(Series::new("days".into(), list)).implode(false), false)
        };
        let (start, end) = (lit(i64::from(self.start)), lit(i64::from(self.end)));
        if self.start < self.end {
            on(0).and(minute.clone().gt_eq(start)).and(minute.lt(end))
        } else {
            // Past midnight: the evening of an allowed day, or the early hours after one.
            on(0).and(minute.clone().gt_eq(start)).or(on(1).and(minute.lt(end)))
        }
    }
}

/// The source IPs seen are listed first (one query; distinct addresses, not events), and those outside
/// every allowed network become the condition.
fn outside_network(ev: &LazyFrame, p: &Params) -> PolarsResult<Option<Expr>> {
    if p.allowed_cidrs.is_empty() {
        return Ok(None);
    }
    let ips = ev.clone().filter(own_call()).select([col(c::SOURCE_IP).drop_nulls().unique()]).run()?;
    let outside: Vec<String> = ips
        .column(c::SOURCE_IP)?
        .str()?
        .iter()
        .flatten()
        .filter(|s| s.parse::<IpAddr>().is_ok_and(|ip| !p.allowed_cidrs.iter().any(|n| n.contains(&ip))))
        .map(str::to_string)
        .collect();
    let list = Series::new("ips".into(), outside);
    Ok(Some(own_call().and(col(c::SOURCE_IP).is_in(lit(list).implode(false), false)).fill_null(lit(false))))
}

fn outside_hours(_: &LazyFrame, p: &Params) -> PolarsResult<Option<Expr>> {
    let Some(inside) = p.allowed_hours.iter().map(Hours::contains).reduce(|a, b| a.or(b)) else {
        return Ok(None);
    };
    Ok(Some(own_call().and(inside.fill_null(lit(true)).not()).fill_null(lit(false))))
}

/// The checks of `only` (all when empty) that their parameters' absence skips, with the flag each needs.
pub fn skipped(only: &[String], p: &Params) -> Vec<(&'static str, &'static str)> {
    CHECKS
        .iter()
        .filter(|k| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(&k.id)))
        .filter_map(|k| PARAMETERIZED.iter().find(|x| x.id == k.id))
        .filter(|x| match x.needs {
            "--allowed-cidr" => p.allowed_cidrs.is_empty(),
            _ => p.allowed_hours.is_empty(),
        })
        .map(|x| (x.id, x.needs))
        .collect()
}

/// The checks of `only` (all when empty), or an error naming an unknown one.
fn selected(only: &[String]) -> PolarsResult<Vec<&'static Check>> {
    if let Some(unknown) = only.iter().find(|o| !CHECKS.iter().any(|k| o.eq_ignore_ascii_case(&k.id))) {
        let ids: Vec<&str> = CHECKS.iter().map(|k| k.id.as_str()).collect();
        polars::prelude::polars_bail!(InvalidOperation: "no check {unknown:?}; the checks are {}", ids.join(", "));
    }
    Ok(CHECKS.iter().filter(|k| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(&k.id))).collect())
}

/// The row condition of a check built from the command's parameters, `None` for the other checks
/// and for one its missing parameters skip.
fn condition(check: &Check, ev: &LazyFrame, params: &Params) -> PolarsResult<Option<Expr>> {
    Ok(match &check.rule {
        Rule::Parameterized => match PARAMETERIZED.iter().find(|x| x.id == check.id) {
            Some(x) => (x.condition)(ev, params)?.map(|cond| cond.fill_null(lit(false))),
            None => None,
        },
        Rule::Sigma { .. } | Rule::Sequence(_) => None,
    })
}

/// The value of `HitEvent::mark` for the sequence check: an authorization failure among a
/// principal's earliest (see `Earliest`), or a successful call that may be the first after them.
const MARK_DENIAL: u8 = 1;
const MARK_SUCCESS: u8 = 2;

/// An event's place in time order (as `HitEvent::cmp_key` orders events: time, event id with a
/// missing one last, input order), borrowed from its batch: compared without copying the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    time_ms: i64,
    no_id: bool,
    event_id: Option<&'a str>,
    seq: u64,
}

impl<'a> Key<'a> {
    fn new(time_ms: i64, event_id: Option<&'a str>, seq: u64) -> Key<'a> {
        Key { time_ms, no_id: event_id.is_none(), event_id, seq }
    }
}

/// A `Key` kept past its batch.
#[derive(Debug)]
struct Kept {
    time_ms: i64,
    event_id: Option<Box<str>>,
    seq: u64,
}

impl Kept {
    fn of(key: Key<'_>) -> Kept {
        Kept { time_ms: key.time_ms, event_id: key.event_id.map(Box::from), seq: key.seq }
    }

    fn key(&self) -> Key<'_> {
        Key::new(self.time_ms, self.event_id.as_deref(), self.seq)
    }
}

/// TS-DENIED-THEN-SUCCEEDED without time order, exactly: its finding for a principal is the earliest
/// successful call after the principal's `DENIED_THRESHOLD`-th authorization failure (K). While the
/// events come in any order, each principal keeps the keys of its earliest failures so far (K can
/// only move earlier as more come) and the earliest success known to lie after K. A failure is
/// passed on to the time-ordered pass (marked) only while it is among the earliest, a success only
/// while no success known to lie after K precedes it: the marked events hold every failure up to the
/// final K and the success reported, so counting the marked failures in time order finds it.
/// Memory: `DENIED_THRESHOLD` keys and one more per principal.
#[derive(Debug, Default)]
struct Earliest {
    denials: Vec<Kept>,
    after: Option<Kept>,
}

impl Earliest {
    /// Is this failure among the earliest so far (then it is marked)?
    fn admit_denial(&mut self, key: Key) -> bool {
        let n = DENIED_THRESHOLD as usize;
        if self.denials.len() == n && self.denials.last().is_some_and(|last| key > last.key()) {
            return false;
        }
        let at = self.denials.partition_point(|d| d.key() < key);
        self.denials.insert(at, Kept::of(key));
        self.denials.truncate(n);
        true
    }

    /// May this success be the one reported (then it is marked)?
    fn admit_success(&mut self, key: Key) -> bool {
        if self.after.as_ref().is_some_and(|a| key > a.key()) {
            return false;
        }
        let n = DENIED_THRESHOLD as usize;
        if self.denials.len() == n && self.denials.last().is_some_and(|k| key > k.key()) {
            self.after = Some(Kept::of(key));
        }
        true
    }
}

/// Column names of the per-check flags in a batch (the checks built from parameters).
fn flag(i: usize) -> String {
    format!("__check_{i}")
}

/// The fields the Sigma checks are looked up by, most selective first: a rule pinning one of them to
/// a few values (`Rule::required_values`) runs only on events with one of those values; the others
/// run on every event.
const KEYS: [(&str, &str); 2] = [("eventName", c::EVENT_NAME), ("userIdentity.type", c::IDENTITY_TYPE)];

/// The columns that tell a principal's own calls from those a service made for it (`own_call`, the
/// sequence check).
const SEQUENCE_COLUMNS: [&str; 2] = [c::INVOKED_BY, c::EVENT_TYPE];

/// Which Sigma checks an event calls for: per key of `KEYS`, the checks by lowercased value, and the
/// checks that pin no key.
#[derive(Default)]
struct Dispatch {
    by_key: Vec<hashbrown::HashMap<String, Vec<usize>>>,
    always: Vec<usize>,
}

impl Dispatch {
    fn new(checks: &[&Check]) -> Dispatch {
        let mut d = Dispatch { by_key: vec![Default::default(); KEYS.len()], always: Vec::new() };
        for (i, check) in checks.iter().enumerate() {
            let Rule::Sigma { rule, .. } = &check.rule else { continue };
            match KEYS.iter().enumerate().find_map(|(k, (path, _))| Some((k, rule.required_values(path)?))) {
                Some((k, values)) => values.into_iter().for_each(|v| d.by_key[k].entry(v).or_default().push(i)),
                None => d.always.push(i),
            }
        }
        d
    }

    /// The checks to run on an event whose key fields hold `values` (in `KEYS` order), in check order.
    fn candidates(&self, values: &[Option<&str>]) -> Vec<usize> {
        let mut out = self.always.clone();
        for (map, value) in self.by_key.iter().zip(values) {
            let Some(v) = value.filter(|_| !map.is_empty()) else { continue };
            if let Some(checks) = crate::sigma::with_lowercase(v, |lower| map.get(lower)) {
                out.extend(checks);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// What the parallel part of `Detection::add` finds for a row: the checks it hits, its outcome, and
/// its fields when it hits any.
struct Row {
    hits: Vec<u32>,
    outcome: Outcome,
    event: Option<findings::EventFields>,
}

/// A `detect` run: the selected checks over batches of events in any order (`add`, as the files are
/// read), then the findings in order (`finish`), by event time, then check id, then event id.
///
/// In each batch, the Sigma checks an event calls for (`Dispatch`) are matched against its record
/// (rebuilt with only the fields they read; rows in parallel), and the checks built from parameters
/// are flag columns; the events a check hits, and those the sequence check must see, go to the runs
/// of hit events (`findings::HitRuns`: sorted, spilled past a sixteenth of the memory limit, merged
/// in time order at the end). The sequence check is exact without ordering the events (see
/// `Earliest`) and follows the merged stream. Memory: a batch, the runs' budget, a few keys per
/// principal and the findings of one millisecond, whatever the number of events.
pub struct Detection {
    checks: Vec<&'static Check>,
    /// Two per check: the act, then the attempt (a failed tampering or credential call).
    detectors: Vec<Detector>,
    sequences: Vec<(usize, Sequence)>,
    dispatch: Dispatch,
    /// Per check, the record fields its Sigma rule reads (`record::needed_fields`).
    fields: Vec<u64>,
    params: Params,
    earliest: hashbrown::HashMap<String, Earliest>,
    /// The only principals the sequence check follows, when known beforehand (`Denials`).
    only: Option<hashbrown::HashSet<String>>,
    runs: HitRuns,
    batches: u64,
}

impl Detection {
    /// The checks of `only` (all when empty; an unknown id is an error), with the parameters of the
    /// checks that need some (those without are skipped); runs held up to a sixteenth of
    /// `memory_limit`.
    pub fn new(only: &[String], params: &Params, memory_limit: u64) -> crate::error::Result<Detection> {
        let checks = selected(only).context("choosing checks")?;
        let mut detectors = Vec::with_capacity(2 * checks.len());
        let mut sequences = Vec::new();
        let mut fields = Vec::with_capacity(checks.len());
        for (i, check) in checks.iter().enumerate() {
            let tags = match &check.rule {
                Rule::Sigma { rule, .. } => rule.meta.attack_techniques().join(","),
                _ => String::new(),
            };
            let act = Detector {
                id: check.id.clone(),
                title: check.title.clone(),
                level: Some(check.severity.clone()),
                status: None,
                tags,
            };
            let attempt = match ATTEMPTS.iter().find(|(id, _)| *id == check.id) {
                Some((_, severity)) => Detector {
                    title: format!("{ATTEMPT_PREFIX}{}", check.title),
                    level: Some(severity.to_string()),
                    ..act.clone()
                },
                None => act.clone(),
            };
            detectors.extend([act, attempt]);
            match &check.rule {
                Rule::Sequence(kind) => sequences.push((i, *kind)),
                Rule::Sigma { rule, .. } => {
                    fields.push(needed_fields(rule));
                    continue;
                }
                Rule::Parameterized => {}
            }
            fields.push(0);
        }
        Ok(Detection {
            dispatch: Dispatch::new(&checks),
            checks,
            detectors,
            sequences,
            fields,
            params: params.clone(),
            earliest: Default::default(),
            only: None,
            runs: HitRuns::for_limit(memory_limit),
            batches: 0,
        })
    }

    /// Whether a check follows principals' failures (then `Denials` can spare it work).
    pub fn follows_denials(&self) -> bool {
        !self.sequences.is_empty()
    }

    /// Follow only these principals' failures and successes: those `Denials` found denied often
    /// enough, over the same events `add` will be given (any others have no sequence finding).
    pub fn only_principals(&mut self, principals: hashbrown::HashSet<String>) {
        self.only = Some(principals);
    }

    /// The frame columns the checks read (their Sigma rules' record fields, the columns of the
    /// parameterized and sequence checks, of a finding row and of the dispatch keys): what `detect`
    /// needs read from raw files and stores. `None` (every column) when a check reads every field.
    pub fn columns_read(&self) -> Option<Vec<&'static str>> {
        let mut columns = super::record::columns_of(self.fields.iter().fold(0, |m, f| m | f))?;
        columns.extend(findings::SOURCE_COLUMNS);
        columns.extend(SEQUENCE_COLUMNS);
        columns.push(c::EVENT_TIME);
        columns.extend(KEYS.map(|(_, column)| column));
        columns.sort_unstable();
        columns.dedup();
        Some(columns)
    }

    /// Check a batch of events (any order; batches are numbered as they come, for ties).
    pub fn add(&mut self, df: DataFrame) -> crate::error::Result<()> {
        let number = self.batches;
        self.batches += 1;
        if df.height() == 0 {
            return Ok(());
        }
        let ev = df.lazy();
        // The conditions are planned per batch: TS-OUTSIDE-NETWORK lists the batch's addresses.
        let mut flags = Vec::new();
        let mut flagged = Vec::new();
        for (i, check) in self.checks.iter().enumerate() {
            if let Some(cond) = condition(check, &ev, &self.params).context("planning checks")? {
                flags.push(cond.alias(flag(i)));
                flagged.push(i);
            }
        }
        let mut columns = columns_read();
        columns.extend(flags);
        let df = ev.select(columns).collect().context("checking a batch")?;
        let batch = Batch::new(&df)?;
        let text = |name: &str| -> crate::error::Result<&super::record::Texts> {
            batch.text_column(name).ok_or_else(|| crate::error::Error::Polars {
                context: format!("column {name}"),
                cause: PolarsError::ColumnNotFound(name.to_string().into()),
            })
        };
        let [id, principal, name, source, ip, error, recipient, account, region] = findings::SOURCE_COLUMNS.map(text);
        let [invoked_by, event_type] = SEQUENCE_COLUMNS.map(text);
        let (id, principal, error) = (id?, principal?, error?);
        let (invoked_by, event_type) = (invoked_by?, event_type?);
        let source_cells = [id, principal, name?, source?, ip?, error, recipient?, account?, region?];
        let keys = [text(KEYS[0].1)?, text(KEYS[1].1)?];
        let flag_cols = flagged
            .iter()
            .map(|&i| Ok((i, df.column(&flag(i)).context("flag")?.bool().context("flag")?.clone())))
            .collect::<crate::error::Result<Vec<_>>>()?;
        // Rows in parallel: the Sigma checks, the flag columns, the outcome and, for a row that
        // hits, its fields. What stays serial is the sequence check's state per principal.
        let (checks, dispatch, needs) = (&self.checks, &self.dispatch, &self.fields);
        let rows: Vec<Row> = (0..df.height())
            .into_par_iter()
            // The checks per distinct pair of key values, found once per pair and thread.
            .map_init(hashbrown::HashMap::<[Option<&str>; 2], Vec<usize>>::new, |known, row| {
                let values = keys.map(|k| k.get(row));
                let candidates = known.entry(values).or_insert_with(|| dispatch.candidates(&values));
                let mut hits: Vec<u32> = Vec::new();
                if !candidates.is_empty() {
                    let rec = batch.event(row, candidates.iter().fold(0, |m, &i| m | needs[i]));
                    hits.extend(
                        candidates
                            .iter()
                            .copied()
                            .filter(|&i| matches!(&checks[i].rule, Rule::Sigma { rule, .. } if rule.matches(&rec)))
                            .map(|i| i as u32),
                    );
                }
                hits.extend(flag_cols.iter().filter(|(_, f)| f.get(row) == Some(true)).map(|(i, _)| *i as u32));
                let outcome = findings::outcome(error.get(row));
                let event =
                    (!hits.is_empty()).then(|| findings::EventFields::from_source(source_cells.map(|c| c.get(row))));
                Row { hits, outcome, event }
            })
            .collect();
        let wants_denials = !self.sequences.is_empty();
        let mut out = Vec::new();
        for (row, Row { hits, outcome, event }) in rows.into_iter().enumerate() {
            let time_ms = batch.time.get(row).unwrap_or(i64::MAX);
            let seq = findings::seq(number, row);
            let mut mark = 0;
            // A sequence follows the calls principals made themselves (not a service on their behalf).
            let own = is_own_call(invoked_by.get(row), event_type.get(row));
            let who = principal.get(row).filter(|p| !p.is_empty() && self.only.as_ref().is_none_or(|o| o.contains(*p)));
            if let Some(who) = who.filter(|_| wants_denials && own) {
                let key = Key::new(time_ms, id.get(row), seq);
                let state = self.earliest.entry_ref(who).or_default();
                if outcome == Outcome::Denied {
                    if state.admit_denial(key) {
                        mark = MARK_DENIAL;
                    }
                } else if outcome == Outcome::Succeeded && state.admit_success(key) {
                    mark = MARK_SUCCESS;
                }
            }
            let event = match event {
                Some(event) => event,
                None if mark != 0 => findings::EventFields::from_source(source_cells.map(|c| c.get(row))),
                None => continue,
            };
            out.push(HitEvent { time_ms, seq, event, outcome, hits, mark, payload: None });
        }
        self.runs.add(out)
    }

    /// The findings, handed to `emit` a frame at a time, ordered by event time, then check id, then
    /// event id (then the other columns).
    pub fn finish(self, emit: impl FnMut(DataFrame) -> crate::error::Result<()>) -> crate::error::Result<()> {
        let Detection { detectors, sequences, runs, .. } = self;
        let mut out = Emitter::new(&detectors, Shape::Detect, emit);
        let finding = |check: usize, ev: &HitEvent| {
            let attempt =
                ev.outcome != Outcome::Succeeded && ATTEMPTS.iter().any(|(id, _)| *id == detectors[2 * check].id);
            Finding {
                detector: (2 * check + usize::from(attempt)) as u32,
                time_ms: ev.time_ms,
                event: ev.event.clone(),
                outcome: ev.outcome,
            }
        };
        // Findings of one millisecond are put in order together.
        let order = |a: &Finding, b: &Finding| detect_order(&detectors, a).cmp(&detect_order(&detectors, b));
        let mut denials: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
        let mut reported: hashbrown::HashSet<String> = hashbrown::HashSet::new();
        let mut millisecond: Vec<Finding> = Vec::new();
        for ev in runs.finish()? {
            let ev = ev?;
            if millisecond.first().is_some_and(|f| f.time_ms != ev.time_ms) {
                millisecond.sort_by(order);
                for f in millisecond.drain(..) {
                    out.push(f)?;
                }
            }
            for &i in &ev.hits {
                millisecond.push(finding(i as usize, &ev));
            }
            let Some(who) = ev.event.get(field::PRINCIPAL).filter(|_| ev.mark != 0) else { continue };
            for &(i, kind) in &sequences {
                match kind {
                    Sequence::DeniedThenSucceeded => match ev.mark {
                        MARK_DENIAL => *denials.entry_ref(who).or_insert(0) += 1,
                        MARK_SUCCESS
                            if denials.get(who).is_some_and(|n| *n >= DENIED_THRESHOLD)
                                && reported.insert(who.to_string()) =>
                        {
                            millisecond.push(finding(i, &ev))
                        }
                        _ => {}
                    },
                }
            }
        }
        millisecond.sort_by(order);
        for f in millisecond {
            out.push(f)?;
        }
        out.flush()
    }
}

/// Where a finding goes among those of its millisecond: check id, event id (a missing one last), then
/// the other fields.
#[allow(clippy::type_complexity)]
fn detect_order<'a>(
    detectors: &'a [Detector],
    f: &'a Finding,
) -> (i64, &'a str, bool, Option<&'a str>, [Option<&'a str>; 4], &'static str) {
    (
        f.time_ms,
        detectors[f.detector as usize].id.as_str(),
        f.field(field::EVENT_ID).is_none(),
        f.field(field::EVENT_ID),
        [field::PRINCIPAL, field::EVENT_NAME, field::SOURCE_IP, field::ERROR_CODE].map(|i| f.field(i)),
        f.outcome.as_str(),
    )
}

/// No findings, with the findings' columns.
pub fn empty_findings() -> crate::error::Result<DataFrame> {
    findings::empty(Shape::Detect)
}

/// All findings over `ev`, kept in `detect`'s order to be read again (the report's input): held up
/// to a sixteenth of `memory_limit`, spilled past it (`spill::OrderedRows`). The events may come in
/// any order; `memory_limit` also bounds the runs of hit events held before they spill.
pub fn findings_kept(
    ev: LazyFrame,
    only: &[String],
    params: &Params,
    memory_limit: u64,
) -> crate::error::Result<super::spill::Kept> {
    let mut run = Detection::new(only, params, memory_limit)?;
    // Only the columns the checks read are decoded (over 10 M events the report's detect phase
    // peaked 0.1 GB higher decoding every column); the other string columns come to `add` null, as
    // raw files read for `detect` leave them.
    match run.columns_read() {
        Some(columns) => super::stream_reading(ev, &columns, |df| run.add(df))?,
        None => super::stream(ev, |df| run.add(df))?,
    }
    let mut out = super::spill::OrderedRows::new(memory_limit / 16);
    run.finish(|df| out.add(df))?;
    out.finish(empty_findings()?)
}

/// The list of checks as a table (for `detect --list`).
pub fn list() -> PolarsResult<DataFrame> {
    let col_of = |name: &str, f: fn(&Check) -> &String| {
        Column::new(name.into(), CHECKS.iter().map(|k| f(k).as_str()).collect::<Vec<_>>())
    };
    DataFrame::new(
        CHECKS.len(),
        vec![
            col_of("check_id", |k| &k.id),
            col_of("title", |k| &k.title),
            col_of("severity", |k| &k.severity),
            col_of("reference", |k| &k.reference),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// detect reads what its checks read (whether it reads enough, the golden answers of every
    /// dataset tell): the columns of the finding rows, the sequence and the dispatch, and not those
    /// no check reads (the request, response and additional data blobs are read: console sign-in
    /// checks read them).
    #[test]
    fn only_the_columns_the_checks_read_are_read() {
        let params = Params::default();
        let all = Detection::new(&[], &params, 1 << 30).unwrap().columns_read().expect("a projection");
        assert!(!all.contains(&c::USER_AGENT) && !all.contains(&c::ACCESS_KEY_ID), "{all:?}");
        for needed in [c::EVENT_TIME, c::PRINCIPAL, c::INVOKED_BY, c::IDENTITY_TYPE, c::ERROR_CODE] {
            assert!(all.contains(&needed), "{needed}: {all:?}");
        }
    }

    #[test]
    fn check_ids_are_unique() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|k| k.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(CHECKS.iter().all(|k| !k.reference.is_empty()));
    }

    /// Every rule file loads as one rule, is a check (in `ORDER`), and keeps the check's metadata.
    #[test]
    fn every_rule_file_is_a_check() {
        assert_eq!(load_checks().map(|k| k.len()), Ok(ORDER.len()));
        assert_eq!(BUILTIN.len() + IN_RUST.len(), ORDER.len());
        for (file, text) in BUILTIN {
            let check = builtin_check(file, text).unwrap();
            let Rule::Sigma { rule, .. } = &check.rule else { panic!("{file}") };
            assert!(ORDER.contains(&check.id.as_str()), "{file}");
            assert_eq!(rule.meta.author.as_deref(), Some("trailscope"), "{file}");
            assert!(rule.meta.description.as_deref().is_some_and(|d| !d.is_empty()), "{file}");
        }
        let tamper = CHECKS.iter().find(|k| k.id == "TS-TRAIL-TAMPER").unwrap();
        let Rule::Sigma { rule, .. } = &tamper.rule else { panic!() };
        assert_eq!(rule.meta.attack_techniques(), ["T1562.008"]);
        assert_eq!((tamper.severity.as_str(), tamper.title.as_str()), ("critical", tamper.title.as_str()));
    }

    /// Per rule file: records (CloudTrail JSON, as `query::record` rebuilds them) that must match and
    /// records that must not, written from each check's definition (its metric filter or citation).
    #[test]
    fn each_rule_matches_its_positive_and_not_its_negatives() {
        use serde_json::{json, Value};
        let iam = |name: &str, who: &str, target: Option<&str>| {
            let mut rec = json!({"eventName": name, "eventSource": "iam.amazonaws.com",
                                 "userIdentity": {"type": "IAMUser", "userName": who}});
            if let Some(t) = target {
                rec["requestParameters"] = json!({ "userName": t });
            }
            rec
        };
        let ev = |name: &str, source: &str| json!({"eventName": name, "eventSource": source});
        let cases: Vec<(&str, Value, Vec<Value>)> = vec![
            (
                "CIS-4.1",
                json!({"errorCode": "Client.UnauthorizedOperation"}),
                vec![
                    json!({"errorCode": "client.unauthorizedoperation"}),
                    json!({"errorCode": "NoSuchEntity"}),
                    json!({"errorCode": "xAccessDenied"}),
                    json!({}),
                ],
            ),
            (
                "CIS-4.2",
                json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
                       "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"}}),
                vec![
                    json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
                           "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "YES"}}),
                    json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "Root"},
                           "responseElements": {"ConsoleLogin": "Success"}}),
                    json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser"},
                           "responseElements": {"ConsoleLogin": "Failure"}}),
                    json!({"eventName": "consolelogin", "userIdentity": {"type": "IAMUser"},
                           "responseElements": {"ConsoleLogin": "Success"}}),
                ],
            ),
            (
                "CIS-4.3",
                json!({"eventName": "GetCallerIdentity", "userIdentity": {"type": "Root"}}),
                vec![
                    json!({"userIdentity": {"type": "Root", "invokedBy": "s3.amazonaws.com"}}),
                    json!({"userIdentity": {"type": "Root"}, "eventType": "AwsServiceEvent"}),
                    json!({"userIdentity": {"type": "root"}}),
                    json!({"userIdentity": {"type": "IAMUser"}}),
                ],
            ),
            (
                "CIS-4.4",
                ev("PutRolePolicy", "iam.amazonaws.com"),
                vec![ev("putrolepolicy", "iam.amazonaws.com"), ev("GetRolePolicy", "iam.amazonaws.com")],
            ),
            (
                "CIS-4.5",
                ev("StopLogging", "cloudtrail.amazonaws.com"),
                vec![ev("LookupEvents", "cloudtrail.amazonaws.com")],
            ),
            (
                "CIS-4.6",
                json!({"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"}),
                vec![
                    json!({"eventName": "ConsoleLogin", "errorMessage": "failed authentication"}),
                    json!({"eventName": "ConsoleLogin"}),
                ],
            ),
            (
                "CIS-4.7",
                ev("ScheduleKeyDeletion", "kms.amazonaws.com"),
                vec![
                    ev("ScheduleKeyDeletion", "KMS.amazonaws.com"),
                    ev("DisableKey", "other.amazonaws.com"),
                    ev("Decrypt", "kms.amazonaws.com"),
                ],
            ),
            (
                "CIS-4.8",
                ev("PutBucketPolicy", "s3.amazonaws.com"),
                vec![ev("PutBucketPolicy", "s3-control.amazonaws.com"), ev("GetBucketPolicy", "s3.amazonaws.com")],
            ),
            (
                "CIS-4.9",
                ev("StopConfigurationRecorder", "config.amazonaws.com"),
                vec![ev("StopConfigurationRecorder", "ec2.amazonaws.com")],
            ),
            (
                "CIS-4.10",
                ev("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com"),
                vec![ev("DescribeSecurityGroups", "ec2.amazonaws.com")],
            ),
            (
                "CIS-4.11",
                ev("CreateNetworkAclEntry", "ec2.amazonaws.com"),
                vec![ev("DescribeNetworkAcls", "ec2.amazonaws.com")],
            ),
            (
                "CIS-4.12",
                ev("AttachInternetGateway", "ec2.amazonaws.com"),
                vec![ev("DescribeInternetGateways", "ec2.amazonaws.com")],
            ),
            (
                "CIS-4.13",
                ev("CreateRoute", "ec2.amazonaws.com"),
                vec![ev("CreateRoute", "other.amazonaws.com"), ev("DescribeRouteTables", "ec2.amazonaws.com")],
            ),
            ("CIS-4.14", ev("ModifyVpcAttribute", "ec2.amazonaws.com"), vec![ev("DescribeVpcs", "ec2.amazonaws.com")]),
            (
                "CIS-4.15",
                ev("LeaveOrganization", "organizations.amazonaws.com"),
                vec![
                    ev("LeaveOrganization", "iam.amazonaws.com"),
                    ev("DescribeOrganization", "organizations.amazonaws.com"),
                ],
            ),
            (
                "TS-TRAIL-TAMPER",
                ev("PutEventSelectors", "cloudtrail.amazonaws.com"),
                vec![ev("StartLogging", "cloudtrail.amazonaws.com"), ev("StopLogging", "cloudtrail.AMAZONAWS.com")],
            ),
            (
                "TS-ROOT-ACCESS-KEY",
                json!({"eventName": "CreateAccessKey", "userIdentity": {"type": "Root"}, "requestParameters": {}}),
                vec![
                    json!({"eventName": "CreateAccessKey", "userIdentity": {"type": "Root"},
                           "requestParameters": {"userName": "bob"}}),
                    iam("CreateAccessKey", "alice", None),
                ],
            ),
            (
                "TS-CRED-FOR-OTHER-USER",
                iam("CreateLoginProfile", "alice", Some("bob")),
                vec![
                    iam("CreateAccessKey", "alice", Some("alice")),
                    iam("CreateAccessKey", "alice", None),
                    iam("DeleteAccessKey", "alice", Some("bob")),
                ],
            ),
            (
                "TS-NO-MFA-SESSION",
                json!({"eventName": "ListBuckets", "userIdentity": {"type": "IAMUser",
                       "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}}}),
                vec![
                    json!({"eventName": "ListBuckets", "userIdentity": {"type": "IAMUser",
                           "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}}}),
                    json!({"eventName": "Decrypt", "userIdentity": {"type": "IAMUser", "invokedBy": "s3.amazonaws.com",
                           "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}}}),
                    json!({"eventName": "ConsoleLogin", "userIdentity": {"type": "IAMUser",
                           "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}}}),
                    // No event name: the check's condition is unknown, not true.
                    json!({"userIdentity": {"type": "IAMUser", "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}}}),
                    json!({"eventName": "ListBuckets", "userIdentity": {"type": "AssumedRole",
                           "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}}}),
                ],
            ),
            (
                "TS-SSM-SESSION",
                ev("StartSession", "ssm.amazonaws.com"),
                vec![ev("StartSession", "ec2.amazonaws.com"), ev("SendCommand", "ssm.amazonaws.com")],
            ),
        ];
        for (file, text) in BUILTIN {
            let check = builtin_check(file, text).unwrap();
            let Rule::Sigma { rule, .. } = &check.rule else { panic!("{file}") };
            let (_, positive, negatives) =
                cases.iter().find(|(id, ..)| *id == check.id).unwrap_or_else(|| panic!("{file} has no test case"));
            assert!(rule.matches(positive), "{file}: {positive}");
            for n in negatives {
                assert!(!rule.matches(n), "{file}: {n}");
            }
        }
        assert_eq!(cases.len(), BUILTIN.len());
    }

    /// The rules read the record `query::record` rebuilds from the frame: mfaAuthenticated (a boolean
    /// column) as CloudTrail's text, JSON blobs at any depth, a missing field as missing.
    #[test]
    fn rules_run_on_the_rebuilt_record() {
        let df = df!(
            c::EVENT_TIME => [1_700_000_000_000i64, 1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003],
            c::EVENT_ID => ["e1", "e2", "e3", "e4"],
            c::EVENT_NAME => [Some("ListBuckets"), None, Some("CreateAccessKey"), Some("CreateAccessKey")],
            c::IDENTITY_TYPE => ["IAMUser", "IAMUser", "IAMUser", "IAMUser"],
            c::USER_NAME => ["alice", "alice", "alice", "alice"],
            c::SESSION_MFA => [false, false, true, true],
            c::ERROR_CODE => [None, None, None, Some("Client.AccessDeniedException")],
            c::REQUEST_PARAMETERS => [None, None, Some(r#"{"userName": "bob"}"#), Some(r#"{"userName":"alice"}"#)],
        )
        .unwrap();
        let mut full = DataFrame::empty();
        for (name, dtype) in crate::ingest::frame::schema().iter() {
            let column = match df.column(name) {
                Ok(col) => col.cast(dtype).unwrap(),
                Err(_) => Column::full_null(name.clone(), df.height(), dtype),
            };
            full.with_column(column).unwrap();
        }
        let only = ["TS-NO-MFA-SESSION".to_string(), "TS-CRED-FOR-OTHER-USER".to_string()];
        let mut run = Detection::new(&only, &Params::default(), 1 << 30).unwrap();
        run.add(full).unwrap();
        let mut got = Vec::new();
        run.finish(|df| {
            let ids = df.column("check_id").unwrap().str().unwrap().clone();
            let events = df.column(c::EVENT_ID).unwrap().str().unwrap().clone();
            let outcomes = df.column("outcome").unwrap().str().unwrap().clone();
            for r in 0..df.height() {
                got.push(format!("{} {} {}", ids.get(r).unwrap(), events.get(r).unwrap(), outcomes.get(r).unwrap()));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["TS-NO-MFA-SESSION e1 succeeded", "TS-CRED-FOR-OTHER-USER e3 succeeded"]);
    }

    /// One outcome rule: `findings::outcome` and the frame's `is_denied` agree, EC2's prefix included.
    #[test]
    fn outcome_and_is_denied_agree() {
        let codes = [
            None,
            Some(""),
            Some("AccessDenied"),
            Some("AccessDeniedException"),
            Some("Client.UnauthorizedOperation"),
            Some("Client.AccessDenied"),
            Some("Server.VpceAccessDenied"),
            Some("VpceAccessDenied"),
            Some("TrailNotFoundException"),
            Some("Client.DryRunOperation"),
            Some("accessdenied"),
        ];
        let df = df!(c::ERROR_CODE => codes).unwrap();
        let denied = df.lazy().select([super::super::is_denied().fill_null(lit(false)).alias("d")]).run().unwrap();
        let denied: Vec<bool> = denied.column("d").unwrap().bool().unwrap().iter().map(|b| b.unwrap()).collect();
        let outcomes: Vec<Outcome> = codes.iter().map(|c| findings::outcome(*c)).collect();
        assert_eq!(denied, outcomes.iter().map(|o| *o == Outcome::Denied).collect::<Vec<_>>());
        use Outcome::*;
        assert_eq!(
            outcomes,
            [Succeeded, Succeeded, Denied, Denied, Denied, Denied, Denied, Denied, Failed, Failed, Failed]
        );
    }
}

#[cfg(test)]
mod sequence_tests {
    use super::*;

    /// Events as the frame holds them: these columns, the others null.
    fn frame(rows: &[(i64, String, &str, Option<&str>)]) -> DataFrame {
        let df = df!(
            c::EVENT_TIME => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            c::EVENT_ID => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            c::PRINCIPAL => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            c::ERROR_CODE => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            c::EVENT_NAME => rows.iter().map(|_| "GetObject").collect::<Vec<_>>(),
        )
        .unwrap();
        let mut full = DataFrame::empty();
        for (name, dtype) in crate::ingest::frame::schema().iter() {
            let column = match df.column(name) {
                Ok(col) => col.cast(dtype).unwrap(),
                Err(_) => Column::full_null(name.clone(), df.height(), dtype),
            };
            full.with_column(column).unwrap();
        }
        full
    }

    /// TS-DENIED-THEN-SUCCEEDED gives, whatever order the events come in and however they are cut
    /// into batches, the finding of a pass over the events in time order: per principal, the first
    /// successful call after its fifth authorization failure. Half the rounds count the denials
    /// first (`Denials`, as `detect` does from a store): the same findings, and the calls of the
    /// principals denied fewer than five times stay out of the hit runs.
    #[test]
    fn denied_then_succeeded_is_exact_in_any_order() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let principals = ["arn:a", "arn:b", "arn:c", "arn:d"];
        let mut reported_any = 0;
        let (mut rounds_left_out, mut rounds_all_followed) = (0, 0);
        for round in 0..40 {
            let mut events: Vec<(i64, String, &str, Option<&str>)> = (0..300)
                .map(|n| {
                    let who = next(4) as usize;
                    // arn:d is seldom denied: some rounds five times or more, some fewer.
                    let code = match (who, next(100)) {
                        (3, 5..) => None,
                        (_, 0..=39) => Some("AccessDenied"),
                        (_, 40..=49) => Some("NoSuchEntity"),
                        (_, 50..=59) => Some("Client.UnauthorizedOperation"),
                        _ => None,
                    };
                    // Few distinct times: many events share a millisecond.
                    (1_700_000_000_000 + next(60) as i64, format!("e{:03}", n), principals[who], code)
                })
                .collect();
            // Time order, as the expected pass reads the events.
            let mut ordered = events.clone();
            ordered.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            let mut denials: std::collections::HashMap<&str, u32> = Default::default();
            let mut expected = Vec::new();
            for (t, id, who, code) in &ordered {
                let denied =
                    code.is_some_and(|c| c.starts_with("AccessDenied") || c.ends_with("UnauthorizedOperation"));
                if denied {
                    *denials.entry(who).or_default() += 1;
                } else if code.is_none()
                    && denials.get(who).is_some_and(|n| *n >= DENIED_THRESHOLD)
                    && !expected.iter().any(|(_, _, w)| w == who)
                {
                    expected.push((*t, id.clone(), who.to_string()));
                }
            }
            expected.sort();
            reported_any += expected.len();
            // Shuffled, in batches of random sizes; the runs spill when `round` is odd.
            for i in (1..events.len()).rev() {
                events.swap(i, next(i as u64 + 1) as usize);
            }
            let limit = if round % 2 == 1 { 0 } else { 1 << 30 };
            let mut run = Detection::new(&["TS-DENIED-THEN-SUCCEEDED".to_string()], &Params::default(), limit).unwrap();
            if limit == 0 {
                run.runs = HitRuns::new(0);
            }
            let counted_first = round % 4 >= 2;
            // With the count, also a run without it over the same batches, to compare their runs.
            let mut reference =
                Detection::new(&["TS-DENIED-THEN-SUCCEEDED".to_string()], &Params::default(), limit).unwrap();
            if counted_first {
                let mut counted = Denials::default();
                for batch in events.chunks(next(40) as usize + 1) {
                    counted.add(Denials::of(frame(batch).lazy()).collect().unwrap()).unwrap();
                }
                let often: hashbrown::HashSet<String> =
                    denials.iter().filter(|(_, n)| **n >= DENIED_THRESHOLD).map(|(w, _)| w.to_string()).collect();
                let principals = counted.principals();
                assert_eq!(principals, often, "round {round}");
                run.only_principals(principals);
            }
            let mut rest = &events[..];
            while !rest.is_empty() {
                let n = (next(40) as usize + 1).min(rest.len());
                run.add(frame(&rest[..n])).unwrap();
                if counted_first {
                    reference.add(frame(&rest[..n])).unwrap();
                }
                rest = &rest[n..];
            }
            if counted_first {
                // Without the count every call of arn:d's that succeeded or was denied is marked
                // (fewer than five denials: any success may yet follow a fifth); with it, none.
                let d_denied_enough = denials.get("arn:d").is_some_and(|n| *n >= DENIED_THRESHOLD);
                let d_marked = events
                    .iter()
                    .filter(|e| e.2 == "arn:d" && e.3.is_none_or(|c| c == "AccessDenied" || c.ends_with("Operation")))
                    .count() as u64;
                let left_out = if d_denied_enough { 0 } else { d_marked };
                assert_eq!(reference.runs.events() - run.runs.events(), left_out, "round {round}");
                rounds_left_out += u32::from(left_out > 0);
                rounds_all_followed += u32::from(d_denied_enough);
                reference.finish(|_| Ok(())).unwrap();
            }
            let mut got = Vec::new();
            run.finish(|df| {
                let times = df.column(c::EVENT_TIME).unwrap().cast(&DataType::Int64).unwrap();
                let times = times.i64().unwrap();
                let ids = df.column(c::EVENT_ID).unwrap().str().unwrap();
                let who = df.column(c::PRINCIPAL).unwrap().str().unwrap();
                for r in 0..df.height() {
                    got.push((times.get(r).unwrap(), ids.get(r).unwrap().to_string(), who.get(r).unwrap().to_string()));
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(got, expected, "round {round}");
        }
        assert!(reported_any > 20, "the events should make findings: {reported_any}");
        assert!(rounds_left_out > 0 && rounds_all_followed > 0, "{rounds_left_out} {rounds_all_followed}");
    }
}

#[cfg(test)]
mod parameter_tests {
    use super::*;

    #[test]
    fn allowed_hours_parse() {
        let h: Hours = "Mon-Fri 07:00-19:00 +02:00".parse().unwrap();
        assert_eq!(h.days, [true, true, true, true, true, false, false]);
        assert_eq!((h.start, h.end, h.offset_minutes), (420, 1140, 120));
        let h: Hours = "fri-mon 22:00-06:00 UTC-05:30".parse().unwrap();
        assert_eq!(h.days, [true, false, false, false, true, true, true]);
        assert_eq!(h.offset_minutes, -330);
        let h: Hours = "Sat,Sunday 00:00-24:00".parse().unwrap();
        assert_eq!((h.days[5], h.days[6], h.days[0], h.offset_minutes, h.end), (true, true, false, 0, 1440));
        assert_eq!("daily 09:00-17:00 Z".parse::<Hours>().unwrap().days, [true; 7]);
        assert_eq!("Mon 09:00-17:00 -0400".parse::<Hours>().unwrap().offset_minutes, -240);
        for bad in
            ["Mon-Fri", "Mon-Fri 07:00-07:00", "Xyz 07:00-19:00", "Mon 25:00-26:00", "Mon 07:00-19:00 Europe/Paris"]
        {
            assert!(bad.parse::<Hours>().is_err(), "{bad}");
        }
        let e = "Mon-Fri 07:00-19:00 Europe/Paris".parse::<Hours>().unwrap_err().to_string();
        assert!(e.contains("+02:00"), "{e}");
    }

    fn inside(h: &str, times: &[&str]) -> Vec<bool> {
        let ms: Vec<i64> = times.iter().map(|t| crate::time::parse_instant(t).unwrap()).collect();
        let df = df!(c::EVENT_TIME => ms).unwrap();
        let h: Hours = h.parse().unwrap();
        let out = df
            .lazy()
            .select([col(c::EVENT_TIME)
                .cast(DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
                .alias(c::EVENT_TIME)])
            .select([h.contains().alias("in")])
            .run()
            .unwrap();
        out.column("in").unwrap().bool().unwrap().iter().map(|b| b.unwrap()).collect()
    }

    #[test]
    fn allowed_hours_windows() {
        // 2024-07-29 is a Monday; +02:00 moves 05:30Z to 07:30 local.
        let t = ["2024-07-29T05:30:00Z", "2024-07-29T04:59:00Z", "2024-07-29T17:00:00Z", "2024-08-03T10:00:00Z"];
        assert_eq!(inside("Mon-Fri 07:00-19:00 +02:00", &t), [true, false, false, false]);
        // Friday 23:00 local and the early hours of Saturday are inside a Fri 22:00-06:00 window.
        let t = ["2024-08-02T23:00:00Z", "2024-08-03T05:59:00Z", "2024-08-03T06:00:00Z", "2024-08-01T23:00:00Z"];
        assert_eq!(inside("Fri 22:00-06:00", &t), [true, true, false, false]);
        // Sunday 23:30 at -01:00 is Monday 00:30Z.
        assert_eq!(inside("Sun 23:00-24:00 -01:00", &["2024-08-05T00:30:00Z"]), [true]);
    }
}
