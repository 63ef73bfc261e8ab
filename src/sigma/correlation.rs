//! Sigma correlation rules: parsing, linking to base rules, and a streaming evaluator.
//!
//! Window semantics: for each base-rule hit at time `t` (hits must come in time order), the
//! window of a group is the closed interval `[t - timespan, t]`: it holds the group's earlier
//! hits no older than `timespan`. The condition is checked on that window at every hit; when it
//! holds, one [`CorrelationHit`] is emitted carrying the window's events, and the group's window
//! is cleared ("fire and reset"), so each hit needs a fresh set of events. Consequently `lt`/`lte`
//! conditions fire as soon as a window ending at a hit satisfies them (there is no "window
//! closed without enough events" alert). State older than `timespan` is dropped as time advances,
//! so memory is bounded by the events inside the open windows.

use super::error::{ErrorKind, LinkError};
use super::event::FieldPath;
use super::rule::{Meta, Rule};
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{HashMap, HashSet, VecDeque};

/// The four correlation types of the Sigma correlation specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationType {
    /// Count of base-rule hits per group in the window.
    EventCount,
    /// Count of distinct values of `condition.field` per group in the window.
    ValueCount,
    /// All (or `condition` many) of the referenced rules hit, in any order, in the window.
    Temporal,
    /// All referenced rules hit in the listed order within the window.
    TemporalOrdered,
}

/// Comparison of a correlation condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `eq`
    Eq,
}

impl CmpOp {
    fn holds(self, n: u64, limit: u64) -> bool {
        match self {
            CmpOp::Gt => n > limit,
            CmpOp::Gte => n >= limit,
            CmpOp::Lt => n < limit,
            CmpOp::Lte => n <= limit,
            CmpOp::Eq => n == limit,
        }
    }
}

/// A correlation rule as loaded, before its rule references are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationDef {
    /// Title, id, name, level, tags ...
    pub meta: Meta,
    /// `correlation.type`.
    pub kind: CorrelationType,
    /// `correlation.rules`: names or ids of base rules, in order.
    pub rules: Vec<String>,
    /// `correlation.group-by` field paths.
    pub group_by: Vec<String>,
    /// `correlation.timespan` in milliseconds.
    pub timespan_ms: i64,
    /// `correlation.condition` comparisons, all of which must hold (a range may use two).
    /// Empty for `temporal` without condition (all rules required) and `temporal_ordered`.
    pub condition: Vec<(CmpOp, u64)>,
    /// `correlation.condition.field` (value_count only).
    pub field: Option<String>,
    /// `correlation.generate`: whether base-rule hits are also reported on their own.
    pub generate: bool,
}

/// Parses `30s`, `5m`, `1h`, `1d`, `1w` into milliseconds.
fn parse_timespan(s: &str) -> Result<i64, ErrorKind> {
    let bad = || ErrorKind::Invalid {
        key: "correlation.timespan".into(),
        message: format!("`{s}` is not a duration like 30s, 5m, 1h, 1d"),
    };
    let s = s.trim();
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let mult: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|&ms| ms > 0).ok_or_else(bad)
}

fn invalid(key: &str, message: &str) -> ErrorKind {
    ErrorKind::Invalid { key: format!("correlation.{key}"), message: message.to_owned() }
}

fn str_list(v: &Yaml, key: &str) -> Result<Vec<String>, ErrorKind> {
    match v {
        Yaml::String(s) => Ok(vec![s.clone()]),
        Yaml::Sequence(seq) => seq
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| invalid(key, "list item is not a string")))
            .collect(),
        _ => Err(invalid(key, "not a list of strings")),
    }
}

/// Parses the `correlation:` map of a document.
pub(super) fn parse_def(meta: Meta, v: &Yaml) -> Result<CorrelationDef, ErrorKind> {
    let Yaml::Mapping(m) = v else {
        return Err(invalid("", "`correlation` is not a map"));
    };
    let mut kind = None;
    let mut rules = Vec::new();
    let mut group_by = Vec::new();
    let mut timespan_ms = None;
    let mut condition = Vec::new();
    let mut field = None;
    let mut generate = false;
    let mut has_condition = false;
    for (k, v) in m {
        let key = k.as_str().unwrap_or_default();
        match key {
            "type" => {
                kind = Some(match v.as_str() {
                    Some("event_count") => CorrelationType::EventCount,
                    Some("value_count") => CorrelationType::ValueCount,
                    Some("temporal") => CorrelationType::Temporal,
                    Some("temporal_ordered") => CorrelationType::TemporalOrdered,
                    _ => return Err(invalid("type", "not event_count, value_count, temporal or temporal_ordered")),
                })
            }
            "rules" => rules = str_list(v, "rules")?,
            "group-by" => group_by = str_list(v, "group-by")?,
            "timespan" | "timeframe" => {
                let text = match v {
                    Yaml::String(s) => s.clone(),
                    _ => return Err(invalid("timespan", "not a string")),
                };
                timespan_ms = Some(parse_timespan(&text)?);
            }
            "generate" => generate = v.as_bool().ok_or_else(|| invalid("generate", "not true/false"))?,
            "condition" => {
                has_condition = true;
                let Yaml::Mapping(c) = v else {
                    return Err(invalid("condition", "not a map"));
                };
                for (ck, cv) in c {
                    let op = match ck.as_str() {
                        Some("gt") => CmpOp::Gt,
                        Some("gte") => CmpOp::Gte,
                        Some("lt") => CmpOp::Lt,
                        Some("lte") => CmpOp::Lte,
                        Some("eq") => CmpOp::Eq,
                        Some("field") => {
                            field = Some(
                                cv.as_str()
                                    .map(str::to_owned)
                                    .ok_or_else(|| invalid("condition.field", "not a string"))?,
                            );
                            continue;
                        }
                        _ => return Err(invalid("condition", "keys are gt, gte, lt, lte, eq, field")),
                    };
                    let n = cv.as_u64().ok_or_else(|| invalid("condition", "count is not a non-negative integer"))?;
                    condition.push((op, n));
                }
            }
            "aliases" => {
                return Err(ErrorKind::Unsupported("correlation `aliases`".into()));
            }
            other => return Err(invalid(other, "unknown key")),
        }
    }
    let kind = kind.ok_or(ErrorKind::Missing("correlation.type"))?;
    let timespan_ms = timespan_ms.ok_or(ErrorKind::Missing("correlation.timespan"))?;
    if rules.is_empty() {
        return Err(ErrorKind::Missing("correlation.rules"));
    }
    match kind {
        CorrelationType::EventCount | CorrelationType::ValueCount if condition.is_empty() => {
            return Err(ErrorKind::Missing("correlation.condition"))
        }
        CorrelationType::ValueCount if field.is_none() => {
            return Err(ErrorKind::Missing("correlation.condition.field"))
        }
        CorrelationType::TemporalOrdered if has_condition => {
            return Err(ErrorKind::Unsupported(
                "a condition on temporal_ordered (all rules, in order, are required)".into(),
            ))
        }
        _ => {}
    }
    if field.is_some() && kind != CorrelationType::ValueCount {
        return Err(invalid("condition.field", "only for value_count"));
    }
    Ok(CorrelationDef { meta, kind, rules, group_by, timespan_ms, condition, field, generate })
}

/// A correlation rule whose references are resolved to indices into the rule slice given to
/// [`link`].
#[derive(Debug, Clone)]
pub struct Correlation {
    /// The definition.
    pub def: CorrelationDef,
    /// Indices of the referenced base rules, in the listed order.
    pub rule_indices: Vec<usize>,
    group_paths: Vec<FieldPath>,
    field_path: Option<FieldPath>,
}

/// Resolves each correlation's `rules` (by `name` or `id`) against all loaded detection rules.
/// Returns the linked correlations and, separately, the ones that failed.
pub fn link(rules: &[Rule], defs: Vec<CorrelationDef>) -> (Vec<Correlation>, Vec<LinkError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let is_corr = |r: &str| defs.iter().any(|d| d.meta.is_named(r));
    let mut resolved = Vec::new();
    for d in &defs {
        let mut idx = Vec::new();
        let mut err = None;
        for r in &d.rules {
            let hits: Vec<usize> = (0..rules.len()).filter(|&i| rules[i].meta.is_named(r)).collect();
            let title = d.meta.title.clone();
            match hits.as_slice() {
                [i] => idx.push(*i),
                [] if is_corr(r) => err = Some(LinkError::Chained { correlation: title, reference: r.clone() }),
                [] => err = Some(LinkError::UnknownRule { correlation: title, reference: r.clone() }),
                _ => err = Some(LinkError::Ambiguous { correlation: title, reference: r.clone() }),
            }
            if err.is_some() {
                break;
            }
        }
        resolved.push(match err {
            Some(e) => Err(e),
            None => Ok(idx),
        });
    }
    for (d, r) in defs.into_iter().zip(resolved) {
        match r {
            Ok(idx) => ok.push(Correlation {
                group_paths: d.group_by.iter().map(|g| FieldPath::parse(g)).collect(),
                field_path: d.field.as_deref().map(FieldPath::parse),
                rule_indices: idx,
                def: d,
            }),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// Whether hits of rule `rule` should be reported on their own: `false` when it is referenced
/// by a correlation with `generate: false` and by none with `generate: true`.
pub fn rule_generates(correlations: &[Correlation], rule: usize) -> bool {
    let mut referenced = false;
    for c in correlations {
        if c.rule_indices.contains(&rule) {
            if c.def.generate {
                return true;
            }
            referenced = true;
        }
    }
    !referenced
}

/// One firing of a correlation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index of the correlation in [`Correlator::correlations`].
    pub correlation: usize,
    /// `(group-by field, value)`; `None` when the event lacks the field.
    pub group: Vec<(String, Option<String>)>,
    /// Time of the oldest event in the window.
    pub first_ms: i64,
    /// Time of the event that completed the condition (the window's end).
    pub last_ms: i64,
    /// The measured quantity: events (event_count), distinct values (value_count) or distinct
    /// rules (temporal, temporal_ordered).
    pub count: u64,
    /// The events in the window, oldest first (the last one completed the condition).
    pub events: Vec<Value>,
}

#[derive(Debug)]
struct Entry {
    time: i64,
    rule: usize,
    value: Option<String>,
    event: Value,
}

type GroupKey = Vec<Option<String>>;

/// Streaming evaluator of linked correlation rules over base-rule hits in time order.
#[derive(Debug)]
pub struct Correlator {
    corrs: Vec<Correlation>,
    /// Base rule index → correlations referencing it.
    by_rule: HashMap<usize, Vec<usize>>,
    windows: Vec<HashMap<GroupKey, VecDeque<Entry>>>,
    last_sweep: Vec<i64>,
    now: i64,
}

impl Correlator {
    /// A correlator for the linked correlations.
    pub fn new(corrs: Vec<Correlation>) -> Self {
        let mut by_rule: HashMap<usize, Vec<usize>> = HashMap::new();
        for (ci, c) in corrs.iter().enumerate() {
            for &r in &c.rule_indices {
                let v = by_rule.entry(r).or_default();
                if !v.contains(&ci) {
                    v.push(ci);
                }
            }
        }
        Correlator {
            windows: corrs.iter().map(|_| HashMap::new()).collect(),
            last_sweep: vec![i64::MIN; corrs.len()],
            corrs,
            by_rule,
            now: i64::MIN,
        }
    }

    /// The correlations, indexed by [`CorrelationHit::correlation`].
    pub fn correlations(&self) -> &[Correlation] {
        &self.corrs
    }

    /// Number of base-rule hits currently held in open windows (the memory in use).
    pub fn open_entries(&self) -> usize {
        self.windows.iter().flat_map(|w| w.values()).map(VecDeque::len).sum()
    }

    /// Feeds one base-rule hit: `rule` indexes the rule slice given to [`link`]. Hits must come
    /// in non-decreasing time order; an earlier time is treated as the latest time seen.
    pub fn observe(&mut self, time_ms: i64, rule: usize, event: &Value) -> Vec<CorrelationHit> {
        let t = time_ms.max(self.now);
        self.now = t;
        self.sweep(t);
        let mut hits = Vec::new();
        let Some(cis) = self.by_rule.get(&rule) else {
            return hits;
        };
        for &ci in cis {
            let (Some(c), Some(groups)) = (self.corrs.get(ci), self.windows.get_mut(ci)) else {
                continue;
            };
            let value = match &c.field_path {
                Some(p) => match p.first_text(event) {
                    Some(v) => Some(v),
                    // value_count ignores events without the counted field.
                    None => continue,
                },
                None => None,
            };
            let key: GroupKey = c.group_paths.iter().map(|p| p.first_text(event)).collect();
            let window = groups.entry(key.clone()).or_default();
            let oldest = t.saturating_sub(c.def.timespan_ms);
            while window.front().is_some_and(|e| e.time < oldest) {
                window.pop_front();
            }
            window.push_back(Entry { time: t, rule, value, event: event.clone() });
            let (fired, count) = evaluate(c, window);
            if fired {
                let entries = groups.remove(&key).unwrap_or_default();
                hits.push(CorrelationHit {
                    correlation: ci,
                    group: c.def.group_by.iter().cloned().zip(key).collect(),
                    first_ms: entries.front().map_or(t, |e| e.time),
                    last_ms: t,
                    count,
                    events: entries.into_iter().map(|e| e.event).collect(),
                });
            }
        }
        hits
    }

    /// Drops expired entries of every group, at most once per timespan per correlation, so
    /// groups that stop receiving hits do not hold memory forever.
    fn sweep(&mut self, t: i64) {
        for (ci, c) in self.corrs.iter().enumerate() {
            let span = c.def.timespan_ms;
            let (Some(last), Some(groups)) = (self.last_sweep.get_mut(ci), self.windows.get_mut(ci)) else {
                continue;
            };
            if *last != i64::MIN && t.saturating_sub(*last) < span {
                continue;
            }
            *last = t;
            let oldest = t.saturating_sub(span);
            groups.retain(|_, w| {
                while w.front().is_some_and(|e| e.time < oldest) {
                    w.pop_front();
                }
                !w.is_empty()
            });
        }
    }
}

/// Whether the window satisfies the correlation, and the measured count.
fn evaluate(c: &Correlation, window: &VecDeque<Entry>) -> (bool, u64) {
    let all = |n: u64| c.def.condition.iter().all(|&(op, lim)| op.holds(n, lim));
    let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    match c.def.kind {
        CorrelationType::EventCount => {
            let n = len(window.len());
            (all(n), n)
        }
        CorrelationType::ValueCount => {
            let distinct: HashSet<&str> = window.iter().filter_map(|e| e.value.as_deref()).collect();
            let n = len(distinct.len());
            (all(n), n)
        }
        CorrelationType::Temporal => {
            let seen: HashSet<usize> = window.iter().map(|e| e.rule).collect();
            let wanted: HashSet<usize> = c.rule_indices.iter().copied().collect();
            let n = len(seen.intersection(&wanted).count());
            let ok = if c.def.condition.is_empty() { n == len(wanted.len()) } else { all(n) };
            (ok, n)
        }
        CorrelationType::TemporalOrdered => {
            // Greedy subsequence match: the earliest hit of each rule after the previous one.
            let mut need = 0;
            for e in window {
                if c.rule_indices.get(need) == Some(&e.rule) {
                    need += 1;
                }
            }
            (need == c.rule_indices.len(), len(need))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule::{load_rules, Loaded};
    use super::*;
    use serde_json::json;

    const BASE: &str = "title: A\nname: rule_a\nid: 00000000-0000-0000-0000-00000000000a\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName: A}, condition: s}\n---\ntitle: B\nname: rule_b\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName: B}, condition: s}\n";

    fn setup(corr: &str) -> (Vec<Rule>, Correlator) {
        let mut rules = Vec::new();
        let mut defs = Vec::new();
        for l in load_rules(&format!("{BASE}---\n{corr}")) {
            match l {
                Ok(Loaded::Rule(r)) => rules.push(r),
                Ok(Loaded::Correlation(c)) => defs.push(c),
                Err(e) => panic!("{e}"),
            }
        }
        let (linked, errs) = link(&rules, defs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(linked.len(), 1);
        (rules, Correlator::new(linked))
    }

    /// Feeds `(seconds, event)` through the base rules, returns `(seconds, count, group)` of hits.
    fn run(rules: &[Rule], c: &mut Correlator, evs: &[(i64, Value)]) -> Vec<(i64, u64, usize)> {
        let mut out = Vec::new();
        for (t, ev) in evs {
            for (i, r) in rules.iter().enumerate() {
                if r.matches(ev) {
                    for h in c.observe(t * 1000, i, ev) {
                        out.push((h.last_ms / 1000, h.count, h.events.len()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn event_count_group_by_and_expiry() {
        let (rules, mut c) = setup("title: C\ncorrelation: {type: event_count, rules: [rule_a], group-by: [user], timespan: 10s, condition: {gte: 3}}\n");
        let a = |u: &str| json!({"eventName": "A", "user": u});
        let hits = run(
            &rules,
            &mut c,
            &[
                (0, a("x")),
                (5, a("y")),
                (9, a("x")),
                // x's first hit (t=0) is older than 10s at t=11: only 2 in window.
                (11, a("x")),
                (12, a("x")), // window [2,12]: 9, 11, 12 → fire
                (13, a("y")), // y: 5, 13 → 2
            ],
        );
        assert_eq!(hits, vec![(12, 3, 3)]);
        // Boundary: an event exactly `timespan` old is still inside.
        let hits = run(&rules, &mut c, &[(100, a("z")), (105, a("z")), (110, a("z"))]);
        assert_eq!(hits, vec![(110, 3, 3)]);
        // State is dropped once windows expire.
        let _ = run(&rules, &mut c, &[(200, a("w"))]);
        let _ = run(&rules, &mut c, &[(300, a("w"))]);
        assert_eq!(c.open_entries(), 1);
    }

    #[test]
    fn value_count_distinct() {
        let (rules, mut c) = setup("title: C\ncorrelation: {type: value_count, rules: [rule_a], group-by: [ip], timespan: 1m, condition: {gt: 2, field: user}}\n");
        let a = |ip: &str, u: &str| json!({"eventName": "A", "ip": ip, "user": u});
        let hits = run(
            &rules,
            &mut c,
            &[(0, a("1", "u1")), (1, a("1", "u1")), (2, a("1", "u2")), (3, a("2", "u3")), (4, a("1", "u3"))],
        );
        assert_eq!(hits, vec![(4, 3, 4)]);
        // Events without the counted field are ignored.
        let hits = run(&rules, &mut c, &[(500, json!({"eventName": "A", "ip": "9"}))]);
        assert!(hits.is_empty());
        assert_eq!(c.open_entries(), 0);
    }

    #[test]
    fn temporal_any_order() {
        let (rules, mut c) = setup("title: C\ncorrelation: {type: temporal, rules: [rule_b, 00000000-0000-0000-0000-00000000000a], group-by: [user], timespan: 5m}\n");
        let e = |n: &str, u: &str| json!({"eventName": n, "user": u});
        let hits = run(
            &rules,
            &mut c,
            &[
                (0, e("B", "x")),
                (10, e("B", "y")),
                (20, e("A", "x")),
                (400, e("A", "y")), // y's B is 390s old: outside 5m
            ],
        );
        assert_eq!(hits, vec![(20, 2, 2)]);
    }

    #[test]
    fn temporal_ordered_requires_order() {
        let (rules, mut c) =
            setup("title: C\ncorrelation: {type: temporal_ordered, rules: [rule_a, rule_b], timespan: 1h}\n");
        let e = |n: &str| json!({"eventName": n});
        let hits = run(&rules, &mut c, &[(0, e("B")), (1, e("A"))]);
        assert!(hits.is_empty());
        let hits = run(&rules, &mut c, &[(2, e("B"))]);
        assert_eq!(hits, vec![(2, 2, 3)]);
        // After the hit the window is reset: a B alone does not fire again.
        assert!(run(&rules, &mut c, &[(3, e("B"))]).is_empty());
        // An A followed by B more than 1h later does not fire.
        assert!(run(&rules, &mut c, &[(10, e("A")), (10 + 3601, e("B"))]).is_empty());
    }

    #[test]
    fn link_errors_and_generate() {
        let mut rules = Vec::new();
        let mut defs = Vec::new();
        let text = format!("{BASE}---\ntitle: C1\nname: c1\ncorrelation: {{type: event_count, rules: [nope], timespan: 1m, condition: {{gte: 1}}}}\n---\ntitle: C2\ncorrelation: {{type: event_count, rules: [c1], timespan: 1m, condition: {{gte: 1}}}}\n---\ntitle: C3\ncorrelation: {{type: temporal, rules: [rule_a], timespan: 1m, generate: true}}\n---\ntitle: C4\ncorrelation: {{type: temporal, rules: [rule_b], timespan: 1m}}\n");
        for l in load_rules(&text) {
            match l {
                Ok(Loaded::Rule(r)) => rules.push(r),
                Ok(Loaded::Correlation(c)) => defs.push(c),
                Err(e) => panic!("{e}"),
            }
        }
        let (ok, errs) = link(&rules, defs);
        assert_eq!(ok.len(), 2);
        assert!(matches!(&errs[0], LinkError::UnknownRule { reference, .. } if reference == "nope"));
        assert!(matches!(&errs[1], LinkError::Chained { reference, .. } if reference == "c1"));
        assert!(rule_generates(&ok, 0));
        assert!(!rule_generates(&ok, 1));
    }

    #[test]
    fn parse_errors() {
        let bad = |c: &str| load_rules(&format!("title: C\ncorrelation: {c}\n")).into_iter().all(|r| r.is_err());
        assert!(bad("{type: event_count, rules: [a], timespan: 5x, condition: {gte: 1}}"));
        assert!(bad("{type: event_count, rules: [a], timespan: 5m}"));
        assert!(bad("{type: value_count, rules: [a], timespan: 5m, condition: {gte: 1}}"));
        assert!(bad("{type: nope, rules: [a], timespan: 5m}"));
        assert!(bad("{type: temporal, rules: [a], timespan: 5m, aliases: {}}"));
        assert!(bad("{type: temporal, rules: [a], timespan: 99999999999999999d}"));
        assert_eq!(parse_timespan("30s"), Ok(30_000));
        assert_eq!(parse_timespan("1d"), Ok(86_400_000));
    }
}
