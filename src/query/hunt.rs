//! `hunt`: Sigma rules over the events. Rules come from files and folders (`.yml`/`.yaml`) and,
//! unless told otherwise, from the SigmaHQ CloudTrail rules shipped inside the binary
//! (`src/sigma/rules/`, Detection Rule License 1.1). `crate::sigma` is the rule language; this file
//! loads rule sets, gives each event the shape of the CloudTrail record the rules were written for,
//! and runs every rule over the events in one pass, in time order, writing hits as they come.
//!
//! **The event a rule sees** is rebuilt from the events frame (`query::record`, shared with `detect`): the record's own field names
//! (`eventName`, `userIdentity.sessionContext.sessionIssuer.arn`, ...) for every field trailscope
//! keeps, and `requestParameters`, `responseElements`, `additionalEventData` and `resources` as the
//! JSON they were delivered as, so a rule may look any depth into them. A rule that reads a CloudTrail
//! field trailscope does not keep (`apiVersion`, `serviceEventDetails`, `userIdentity.onBehalfOf`, ...)
//! is not loaded, with that reason; one that reads a field CloudTrail records do not have (a typo)
//! is loaded and warned about, since it can only match where the field is allowed to be missing.
//!
//! **Speed.** Most rules pin `eventName` to a few values; those run only on events with one of them
//! (`Rule::required_values`), and the record is rebuilt only for an event some rule must look at.
//! Rows of a batch are matched in parallel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::findings::{self, outcome, Detector, Emitter, EventFields, Finding, HitEvent, HitRuns, Shape};
use super::record::{columns_read, needed_fields, Batch, ALL_FIELDS};
use crate::error::{Error, PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::sigma::{self, Correlation, CorrelationDef, Correlator, Level, Loaded, Rule, Status};

/// The shipped rules: (path under `src/sigma/rules/`, text), sorted by path.
pub const SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));

/// Where shipped rules say they come from in messages and `--summary`.
pub const SHIPPED_PREFIX: &str = "(shipped) ";

/// A rule, a file or a reference that could not be used, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// The rule's title or id, when it could be read.
    pub rule: Option<String>,
    pub reason: String,
}

/// A detection rule with where it came from.
#[derive(Debug)]
pub struct LoadedRule {
    pub rule: Rule,
    pub file: String,
    /// Lowercased `eventName`s the rule can only match (see `Rule::required_values`).
    event_names: Option<Vec<String>>,
    /// The record fields it reads (see `needed_fields`).
    fields: u64,
}

/// The rules of a hunt: detection rules, correlations over them, what could not be loaded, and
/// warnings about rules that were loaded.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<LoadedRule>,
    pub correlations: Vec<Correlation>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Which rules and correlations are reported (`select`); base rules of a correlation are always
    /// evaluated.
    report_rule: Vec<bool>,
    report_correlation: Vec<bool>,
    /// The values of `expand` placeholders the rules were loaded with (`--placeholder`).
    placeholders: HashMap<String, Vec<String>>,
}

impl RuleSet {
    /// The frame columns the rules read, and those of a hit row: what `hunt` needs read from raw
    /// files. `None` (every column) when a rule reads every field (keywords) or a correlation is
    /// loaded (its hits carry the whole record).
    pub fn columns_read(&self) -> Option<Vec<&'static str>> {
        if !self.correlations.is_empty() {
            return None;
        }
        let mut columns = super::record::columns_of(self.rules.iter().fold(0, |m, r| m | r.fields))?;
        // A hit row's fields, and the event time (`Batch`).
        columns.extend(findings::SOURCE_COLUMNS);
        columns.push(c::EVENT_TIME);
        Some(columns)
    }
}

/// Which loaded rules report their hits.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--min-level`: rules below it are not reported (rules without a level count as informational).
    pub min_level: Option<Level>,
    /// `--status`: only rules with one of these (empty: any).
    pub statuses: Vec<Status>,
    /// `--rule`: only rules with one of these ids or titles (empty: all).
    pub only: Vec<String>,
    /// `--exclude-rules`: rules with one of these ids or titles are not reported.
    pub exclude: Vec<String>,
}

impl RuleSet {
    /// Rules from `paths` (files, or folders walked for `.yml`/`.yaml`), after the shipped rules when
    /// `shipped`. Unreadable files and rules that do not load become `problems`; a missing path is an
    /// error.
    pub fn load(paths: &[PathBuf], shipped: bool) -> Result<RuleSet> {
        Self::load_with(paths, shipped, &HashMap::new())
    }

    /// `load`, with the values of `expand` placeholders (`%name%` → name → values): a rule using a
    /// placeholder not given is a problem (not loaded), as the Sigma specification asks.
    pub fn load_with(paths: &[PathBuf], shipped: bool, placeholders: &HashMap<String, Vec<String>>) -> Result<RuleSet> {
        let mut set = RuleSet { placeholders: placeholders.clone(), ..RuleSet::default() };
        let mut defs = Vec::new();
        if shipped {
            for (name, text) in SHIPPED {
                set.add_text(&format!("{SHIPPED_PREFIX}{name}"), text, &mut defs);
            }
        }
        for p in paths {
            let mut files = Vec::new();
            rule_files(p, &mut files)?;
            for f in files {
                let name = f.display().to_string();
                match std::fs::read(&f) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => set.add_text(&name, &text, &mut defs),
                        Err(_) => set.problem(&name, None, "not UTF-8 text".into()),
                    },
                    Err(e) => set.problem(&name, None, format!("cannot read: {e}")),
                }
            }
        }
        set.link(defs);
        set.report_rule = vec![true; set.rules.len()];
        set.report_correlation = vec![true; set.correlations.len()];
        Ok(set)
    }

    fn problem(&mut self, file: &str, rule: Option<String>, reason: String) {
        self.problems.push(Problem { file: file.to_string(), rule, reason });
    }

    fn add_text(&mut self, file: &str, text: &str, defs: &mut Vec<(String, CorrelationDef)>) {
        let opts = sigma::LoadOptions { placeholders: Some(&self.placeholders) };
        for loaded in sigma::load_rules_with(text, &opts) {
            match loaded {
                Ok(Loaded::Rule(rule)) => {
                    let name = Some(rule.meta.id.clone().unwrap_or_else(|| rule.meta.title.clone()));
                    if let Some(id) = &rule.meta.id {
                        if let Some(first) = self.rules.iter().find(|r| r.rule.meta.id.as_ref() == Some(id)) {
                            let reason =
                                format!("rule id {id} is already used by {}; this copy is ignored", first.file);
                            self.problem(file, name, reason);
                            continue;
                        }
                    }
                    let fields = check_fields(&rule);
                    if let Some(reason) = fields.not_kept {
                        self.problem(file, name, reason);
                        continue;
                    }
                    if let Some(reason) = fields.unknown {
                        self.warnings.push(Problem { file: file.to_string(), rule: name, reason });
                    }
                    let event_names = rule.required_values("eventName");
                    let fields = needed_fields(&rule);
                    self.rules.push(LoadedRule { rule, file: file.to_string(), event_names, fields });
                }
                Ok(Loaded::Correlation(def)) => defs.push((file.to_string(), def)),
                Err(e) => {
                    let rule = e.rule.clone();
                    self.problem(file, rule, e.to_string());
                }
            }
        }
    }

    fn link(&mut self, defs: Vec<(String, CorrelationDef)>) {
        let rules: Vec<Rule> = self.rules.iter().map(|r| r.rule.clone()).collect();
        for (file, def) in defs {
            let title = def.meta.title.clone();
            let (mut linked, errors) = sigma::link(&rules, vec![def]);
            if errors.is_empty() {
                self.correlations.append(&mut linked);
            }
            for e in errors {
                self.problem(&file, Some(title.clone()), e.to_string());
            }
        }
    }

    /// Decide which rules report their hits.
    pub fn select(&mut self, sel: &Selection) {
        let named = |list: &[String], meta: &sigma::Meta| {
            list.iter().any(|x| meta.id.as_deref() == Some(x.as_str()) || meta.title.eq_ignore_ascii_case(x))
        };
        let keep = |meta: &sigma::Meta| {
            meta.level.unwrap_or(Level::Informational) >= sel.min_level.unwrap_or(Level::Informational)
                && (sel.statuses.is_empty() || meta.status.is_some_and(|s| sel.statuses.contains(&s)))
                && (sel.only.is_empty() || named(&sel.only, meta))
                && !named(&sel.exclude, meta)
        };
        self.report_rule = self.rules.iter().map(|r| keep(&r.rule.meta)).collect();
        self.report_correlation = self.correlations.iter().map(|c| keep(&c.def.meta)).collect();
    }

    /// Ids or titles in `names` that name no loaded rule or correlation.
    pub fn unknown_names<'a>(&self, names: &'a [String]) -> Vec<&'a str> {
        names
            .iter()
            .filter(|x| {
                !self
                    .rules
                    .iter()
                    .map(|r| &r.rule.meta)
                    .chain(self.correlations.iter().map(|c| &c.def.meta))
                    .any(|m| m.id.as_deref() == Some(x.as_str()) || m.title.eq_ignore_ascii_case(x))
            })
            .map(String::as_str)
            .collect()
    }
}

/// Rule files under `path`: the file itself, or a folder's `.yml`/`.yaml` files, sorted.
fn rule_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(path).map_err(|e| Error::io(path, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rule_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Fields kept as the JSON CloudTrail delivered: any path below them is there.
const KEPT_JSON: &[&str] = &["requestParameters", "responseElements", "additionalEventData", "resources"];

/// CloudTrail record fields (the record contents reference) that trailscope does not keep, and the
/// parents under which it keeps only some fields.
const NOT_KEPT: &[&str] = &[
    "apiVersion",
    "serviceEventDetails",
    "addendum",
    "sessionCredentialFromConsole",
    "edgeDeviceDetails",
    "vpcEndpointAccountId",
    "insightDetails",
    "userIdentity.",
    "tlsDetails.",
];

struct FieldCheck {
    not_kept: Option<String>,
    unknown: Option<String>,
}

fn check_fields(rule: &Rule) -> FieldCheck {
    let mut not_kept = Vec::new();
    let mut unknown = Vec::new();
    for f in rule.fields() {
        // A field of the rebuilt record, an object holding some (`userIdentity`), or inside a blob.
        let kept = crate::ingest::frame::CLOUDTRAIL_NAMES
            .iter()
            .any(|(p, _)| *p == f || p.strip_prefix(f).is_some_and(|rest| rest.starts_with('.')))
            || KEPT_JSON.iter().any(|j| f.strip_prefix(j).is_some_and(|rest| rest.starts_with('.')));
        if kept {
            continue;
        }
        let top = f.split('.').next().unwrap_or(f);
        let cloudtrail = NOT_KEPT.iter().any(|n| {
            if let Some(parent) = n.strip_suffix('.') {
                f.starts_with(n) || top == parent
            } else {
                top == *n
            }
        });
        if cloudtrail {
            not_kept.push(f.to_string());
        } else {
            unknown.push(f.to_string());
        }
    }
    FieldCheck {
        not_kept: (!not_kept.is_empty())
            .then(|| format!("reads {} which trailscope does not keep from CloudTrail records", not_kept.join(", "))),
        unknown: (!unknown.is_empty())
            .then(|| format!("reads {}, not a CloudTrail record field: it is always missing", unknown.join(", "))),
    }
}

/// Hits per rule and correlation, for `--summary`.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub rule_hits: Vec<u64>,
    pub correlation_hits: Vec<u64>,
    pub events: u64,
}

/// A rule's or correlation's cells in its hit rows.
fn detector(meta: &sigma::Meta) -> Detector {
    Detector {
        id: meta.id.clone().unwrap_or_else(|| meta.title.clone()),
        title: meta.title.clone(),
        level: meta.level.map(|l| l.to_string()),
        status: meta.status.map(|s| s.to_string()),
        tags: meta.attack_techniques().join(","),
    }
}

/// No hits, with the hit rows' columns.
pub fn empty_hits() -> Result<DataFrame> {
    findings::empty(Shape::Hunt)
}

/// The hit row fields of a record rebuilt for a correlation (the event that completed it).
fn event_fields_of(rec: &Value) -> EventFields {
    let at = |path: &str| sigma::FieldPath::parse(path).first_text(rec);
    let account = at("recipientAccountId").or_else(|| at("userIdentity.accountId"));
    let principal = at("userIdentity.arn").or_else(|| at("userIdentity.principalId"));
    let fields = [
        at("eventID"),
        principal,
        at("eventName"),
        at("eventSource"),
        at("sourceIPAddress"),
        at("errorCode"),
        account,
        at("awsRegion"),
    ];
    EventFields::new(fields.each_ref().map(Option::as_deref))
}

/// A row's hit as `Hunt::add` keeps it: its fields, the detectors kept, the record for correlations.
struct Kept {
    event: EventFields,
    hits: Vec<u32>,
    payload: Option<String>,
}

/// A hunt: the rule set over batches of events in any order (`add`, as the files are read), then
/// the hit rows in time order (`finish`): by event time, event id and rule id, a correlation's row
/// after the hits of the event that completed it.
///
/// Each batch's events are matched against the rules (in parallel); an event with hits becomes a hit
/// event (`findings::HitRuns`: sorted runs, spilled past a sixteenth of the memory limit, merged in
/// time order at the end), carrying the whole record when a correlation's base rule hit it.
/// Correlations follow the merged stream: the time-ordered hits of their base rules, which is all
/// they count. Memory: a batch, the runs' budget and the correlations' open windows.
pub struct Hunt<'a> {
    set: &'a RuleSet,
    /// Which rules an event's name calls for; rules that pin no name run on every event.
    by_name: hashbrown::HashMap<&'a str, Vec<usize>>,
    always: Vec<usize>,
    correlated: Vec<bool>,
    reported: Vec<bool>,
    /// Rules in id order, so an event's hits come out in that order.
    rank: Vec<usize>,
    /// The rules', then the correlations' cells in the rows.
    detectors: Vec<Detector>,
    runs: HitRuns,
    tally: Tally,
    batches: u64,
    /// Keep the reported rules' hits for `finish` to hand out (not when only the tally is wanted).
    keep_hits: bool,
}

impl<'a> Hunt<'a> {
    /// A hunt with `set`, holding hit runs up to a sixteenth of `memory_limit`.
    pub fn new(set: &'a RuleSet, memory_limit: u64) -> Hunt<'a> {
        let mut by_name: hashbrown::HashMap<&str, Vec<usize>> = hashbrown::HashMap::new();
        let mut always = Vec::new();
        for (i, r) in set.rules.iter().enumerate() {
            match &r.event_names {
                Some(names) => names.iter().for_each(|n| by_name.entry(n.as_str()).or_default().push(i)),
                None => always.push(i),
            }
        }
        let correlated: Vec<bool> =
            (0..set.rules.len()).map(|i| set.correlations.iter().any(|c| c.rule_indices.contains(&i))).collect();
        let reported: Vec<bool> =
            (0..set.rules.len()).map(|i| set.report_rule[i] && sigma::rule_generates(&set.correlations, i)).collect();
        let mut order: Vec<usize> = (0..set.rules.len()).collect();
        order.sort_by_cached_key(|&i| {
            set.rules[i].rule.meta.id.clone().unwrap_or_else(|| set.rules[i].rule.meta.title.clone())
        });
        let mut rank = vec![0; set.rules.len()];
        for (n, &i) in order.iter().enumerate() {
            rank[i] = n;
        }
        let detectors = set
            .rules
            .iter()
            .map(|r| detector(&r.rule.meta))
            .chain(set.correlations.iter().map(|c| detector(&c.def.meta)))
            .collect();
        Hunt {
            set,
            by_name,
            always,
            correlated,
            reported,
            rank,
            detectors,
            runs: HitRuns::for_limit(memory_limit),
            tally: Tally {
                rule_hits: vec![0; set.rules.len()],
                correlation_hits: vec![0; set.correlations.len()],
                events: 0,
            },
            batches: 0,
            keep_hits: true,
        }
    }

    /// Count hits only (`--summary`): no hit row is kept or handed out, except what correlations
    /// follow. Over 1 M generated events the shipped rules hit 574 k times, each a row to sort.
    pub fn tally_only(mut self) -> Self {
        self.keep_hits = false;
        self
    }

    /// Match a batch of events (any order; batches are numbered as they come, for ties).
    pub fn add(&mut self, df: DataFrame) -> Result<()> {
        let number = self.batches;
        self.batches += 1;
        self.tally.events += df.height() as u64;
        if df.height() == 0 {
            return Ok(());
        }
        let df = df.lazy().select(columns_read()).collect().context("reading a batch")?;
        let batch = Batch::new(&df)?;
        let set = self.set;
        let (by_name, always, rank, correlated) = (&self.by_name, &self.always, &self.rank, &self.correlated);
        let names = batch.text.iter().find(|(p, _)| *p == "eventName").map(|(_, col)| col.clone());
        let source_cells = findings::SOURCE_COLUMNS.map(|name| batch.text_column(name));
        let (keep_hits, reported) = (self.keep_hits, &self.reported);
        // Rows in parallel: the rules a row hits and, when a hit is kept, its fields and (for a
        // correlation) its record as JSON; the tally stays serial.
        let matched: Vec<(Vec<usize>, Option<Result<Kept>>)> = (0..df.height())
            .into_par_iter()
            .map(|row| {
                let name = names.as_ref().and_then(|n| n.get(row));
                let pinned =
                    name.and_then(|n| sigma::with_lowercase(n, |n| by_name.get(n))).map_or(&[][..], Vec::as_slice);
                if pinned.is_empty() && always.is_empty() {
                    return (Vec::new(), None);
                }
                let need = pinned.iter().chain(always).fold(0, |m, &i| m | set.rules[i].fields);
                let rec = batch.event(row, need);
                let mut hits: Vec<usize> =
                    pinned.iter().chain(always).copied().filter(|&i| set.rules[i].rule.matches(&rec)).collect();
                hits.sort_unstable_by_key(|&i| rank[i]);
                hits.dedup();
                let kept: Vec<u32> = hits
                    .iter()
                    .copied()
                    .filter(|&i| keep_hits && reported[i] || correlated[i])
                    .map(|i| i as u32)
                    .collect();
                if kept.is_empty() {
                    return (hits, None);
                }
                let event = EventFields::from_source(source_cells.map(|c| c.and_then(|c| c.get(row))));
                // A correlation groups by, counts and reports fields of its own: it gets the whole record.
                let payload = match hits.iter().any(|&i| correlated[i]) {
                    true => match serde_json::to_string(&batch.record(row, ALL_FIELDS)) {
                        Ok(text) => Some(text),
                        Err(e) => return (hits, Some(Err(Error::Json { context: "a hunt record".into(), cause: e }))),
                    },
                    false => None,
                };
                (hits, Some(Ok(Kept { event, hits: kept, payload })))
            })
            .collect();
        let mut out = Vec::new();
        for (row, (hits, kept)) in matched.into_iter().enumerate() {
            for &i in &hits {
                self.tally.rule_hits[i] += 1;
            }
            let Some(kept) = kept else { continue };
            let Kept { event, hits, payload } = kept?;
            out.push(HitEvent {
                time_ms: batch.time.get(row).unwrap_or(i64::MIN),
                seq: findings::seq(number, row),
                outcome: outcome(event.get(findings::field::ERROR_CODE)),
                event,
                hits,
                mark: 0,
                payload,
            });
        }
        self.runs.add(out)
    }

    /// The hit rows, handed to `emit` a frame at a time in time order; returns the hits per rule and
    /// correlation.
    pub fn finish(self, emit: impl FnMut(DataFrame) -> Result<()>) -> Result<Tally> {
        let Hunt { set, correlated, reported, detectors, runs, mut tally, .. } = self;
        let mut correlator = Correlator::new(set.correlations.clone());
        let mut out = Emitter::new(&detectors, Shape::Hunt, emit);
        let rules = set.rules.len();
        for ev in runs.finish()? {
            let mut ev = ev?;
            let shown: Vec<u32> = ev.hits.iter().copied().filter(|&i| reported[i as usize]).collect();
            for (n, &i) in shown.iter().enumerate() {
                // The last row takes the event's fields unless a correlation still needs them.
                let event = if n + 1 == shown.len() && ev.payload.is_none() {
                    std::mem::take(&mut ev.event)
                } else {
                    ev.event.clone()
                };
                out.push(Finding { detector: i, time_ms: ev.time_ms, event, outcome: ev.outcome })?;
            }
            let Some(payload) = &ev.payload else { continue };
            let rec: Value =
                serde_json::from_str(payload).map_err(|e| Error::Json { context: "a hunt record".into(), cause: e })?;
            for &i in ev.hits.iter().filter(|&&i| correlated[i as usize]) {
                for hit in correlator.observe(ev.time_ms, i as usize, &rec) {
                    tally.correlation_hits[hit.correlation] += 1;
                    if set.report_correlation[hit.correlation] {
                        let event = hit.events.last().map_or_else(|| ev.event.clone(), event_fields_of);
                        out.push(Finding {
                            detector: (rules + hit.correlation) as u32,
                            time_ms: hit.last_ms,
                            outcome: outcome(event.get(findings::field::ERROR_CODE)),
                            event,
                        })?;
                    }
                }
            }
        }
        out.flush()?;
        Ok(tally)
    }
}

/// Run the rule set over the events of `ev` (any order), handing hit rows to `emit` a frame at a
/// time, in time order (see `Hunt`). Returns the hits per rule and correlation.
pub fn stream_hits(ev: LazyFrame, set: &RuleSet, emit: impl FnMut(DataFrame) -> Result<()>) -> Result<Tally> {
    let mut hunt = Hunt::new(set, crate::ingest::pipeline::DEFAULT_MEMORY_LIMIT);
    super::stream(ev.select(columns_read()), |df| hunt.add(df))?;
    hunt.finish(emit)
}

/// All hits as one frame (hits, not events, are held).
pub fn hits(ev: LazyFrame, set: &RuleSet) -> Result<(DataFrame, Tally)> {
    let mut out = empty_hits()?;
    let tally = stream_hits(ev, set, |df| {
        out.vstack_mut(&df).context("hits")?;
        Ok(())
    })?;
    Ok((out, tally))
}

/// `--summary`: per rule and correlation, its id, title, level and hits; sorted by hits (most
/// first), then id.
pub fn summary(set: &RuleSet, tally: &Tally) -> Result<DataFrame> {
    let mut rows: Vec<(&sigma::Meta, &str, &str, u64)> = Vec::new();
    for (i, r) in set.rules.iter().enumerate() {
        if set.report_rule[i] {
            rows.push((&r.rule.meta, "rule", r.file.as_str(), tally.rule_hits[i]));
        }
    }
    for (i, corr) in set.correlations.iter().enumerate() {
        if set.report_correlation[i] {
            rows.push((&corr.def.meta, "correlation", "", tally.correlation_hits[i]));
        }
    }
    let id = |m: &sigma::Meta| m.id.clone().unwrap_or_else(|| m.title.clone());
    rows.sort_by(|a, b| b.3.cmp(&a.3).then_with(|| id(a.0).cmp(&id(b.0))));
    DataFrame::new(
        rows.len(),
        vec![
            Column::new("rule_id".into(), rows.iter().map(|r| id(r.0)).collect::<Vec<_>>()),
            Column::new("rule_title".into(), rows.iter().map(|r| r.0.title.clone()).collect::<Vec<_>>()),
            Column::new("level".into(), rows.iter().map(|r| r.0.level.map(|l| l.to_string())).collect::<Vec<_>>()),
            Column::new("kind".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("hits".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            Column::new("file".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        ],
    )
    .context("hunt summary")
}

/// The rules not loaded, with their reasons (and the warnings about loaded ones), as a table.
pub fn problems(set: &RuleSet) -> Result<DataFrame> {
    let all: Vec<(&Problem, &str)> =
        set.problems.iter().map(|p| (p, "not loaded")).chain(set.warnings.iter().map(|p| (p, "warning"))).collect();
    DataFrame::new(
        all.len(),
        vec![
            Column::new("file".into(), all.iter().map(|(p, _)| p.file.clone()).collect::<Vec<_>>()),
            Column::new("rule".into(), all.iter().map(|(p, _)| p.rule.clone()).collect::<Vec<_>>()),
            Column::new("status".into(), all.iter().map(|(_, k)| *k).collect::<Vec<_>>()),
            Column::new("reason".into(), all.iter().map(|(p, _)| p.reason.clone()).collect::<Vec<_>>()),
        ],
    )
    .context("rules not loaded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_rule_loads() {
        let set = RuleSet::load(&[], true).unwrap();
        assert_eq!(set.problems, vec![], "shipped rules that do not load");
        assert_eq!(set.rules.len(), SHIPPED.len());
        // One of them reads `status`, which no CloudTrail record has: loaded, with a warning.
        assert!(set.warnings.iter().any(|w| w.reason.contains("status")), "{:?}", set.warnings);
    }

    /// `hunt --rules src/query/checks` runs detect's built-in checks as rules: they load, warning-free.
    #[test]
    fn detect_checks_load_as_rules() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/query/checks");
        let set = RuleSet::load(&[dir], false).unwrap();
        assert_eq!((set.problems.clone(), set.warnings.clone()), (vec![], vec![]));
        assert_eq!(set.rules.len(), crate::query::detect::BUILTIN.len());
        assert!(set.rules.iter().any(|r| r.rule.meta.id.as_deref() == Some("CIS-4.1")));
    }

    #[test]
    fn rules_reading_fields_not_kept_are_refused() {
        let text = "title: t\nid: x\nlogsource: {product: aws, service: cloudtrail}\n\
                    detection: {sel: {apiVersion: '2012'}, condition: sel}\n";
        let mut set = RuleSet::default();
        set.add_text("f.yml", text, &mut Vec::new());
        assert!(set.rules.is_empty());
        assert!(set.problems[0].reason.contains("apiVersion"), "{:?}", set.problems);
    }

    /// Raw files fill the columns the rules read and those of a hit row; keywords or a correlation
    /// need every column.
    #[test]
    fn only_the_columns_the_rules_read_are_read() {
        let rule = |detection: &str| {
            format!("title: t\nid: x\nname: base\nlogsource: {{product: aws, service: cloudtrail}}\ndetection: {detection}\n")
        };
        let mut set = RuleSet::default();
        let text = rule("{sel: {userAgent|contains: boto, requestParameters.bucketName: b}, condition: sel}");
        set.add_text("f.yml", &text, &mut Vec::new());
        let cols = set.columns_read().expect("a projection");
        for needed in [c::USER_AGENT, c::REQUEST_PARAMETERS, c::EVENT_NAME, c::PRINCIPAL, c::ERROR_CODE] {
            assert!(cols.contains(&needed), "{needed} missing from {cols:?}");
        }
        for not_needed in [c::RESPONSE_ELEMENTS, c::TLS_VERSION, c::SESSION_ISSUER_ARN] {
            assert!(!cols.contains(&not_needed), "{not_needed} in {cols:?}");
        }
        let mut keywords = RuleSet::default();
        keywords.add_text("k.yml", &rule("{words: [evil], condition: words}"), &mut Vec::new());
        assert_eq!(keywords.columns_read(), None);
        let corr =
            "title: c\nid: y\ncorrelation: {type: event_count, rules: [base], timespan: 1h, condition: {gte: 2}}\n";
        let mut defs = Vec::new();
        set.add_text("c.yml", corr, &mut defs);
        set.link(defs);
        assert!(!set.correlations.is_empty(), "{:?}", set.problems);
        assert_eq!(set.columns_read(), None);
    }

    #[test]
    fn the_record_is_rebuilt_with_cloudtrail_names() {
        let df = df!(
            c::EVENT_TIME => [1_700_000_000_000i64],
            c::EVENT_NAME => ["StopLogging"],
            c::SESSION_ISSUER_ARN => ["arn:aws:iam::1:role/r"],
            c::REQUEST_PARAMETERS => [r#"{"name":"trail","tags":[{"k":"v"}]}"#],
            c::SESSION_MFA => [false],
        )
        .unwrap();
        let mut full = df.clone();
        for (name, dtype) in crate::ingest::frame::schema().iter() {
            match df.column(name) {
                Ok(col) => full.with_column(col.cast(dtype).unwrap()).unwrap(),
                Err(_) => full.with_column(Column::full_null(name.clone(), 1, dtype)).unwrap(),
            };
        }
        let full = full.lazy().select(columns_read()).collect().unwrap();
        let rec = Batch::new(&full).unwrap().record(0, ALL_FIELDS);
        assert_eq!(rec["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(rec["eventName"], "StopLogging");
        assert_eq!(rec["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"], "arn:aws:iam::1:role/r");
        assert_eq!(rec["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"], "false");
        assert_eq!(rec["requestParameters"]["tags"][0]["k"], "v");
        assert!(rec.get("errorCode").is_none());

        // Rules see the same record with its fields flat (their whole path as the key) unless one
        // reads an object above a field, which asks for them nested.
        let batch = Batch::new(&full).unwrap();
        let rule = |detection: &str| {
            let text =
                format!("title: t\nid: x\nlogsource: {{product: aws, service: cloudtrail}}\ndetection: {detection}\n");
            let mut set = RuleSet::default();
            set.add_text("f.yml", &text, &mut Vec::new());
            assert!(set.problems.is_empty(), "{:?}", set.problems);
            set.rules.remove(0)
        };
        let cases = [
            ("{sel: {userIdentity.sessionContext.sessionIssuer.arn|endswith: role/r}, condition: sel}", true, false),
            ("{sel: {userIdentity.sessionContext.attributes.mfaAuthenticated: 'false'}, condition: sel}", true, false),
            ("{sel: {requestParameters.tags.k: v, eventName: StopLogging}, condition: sel}", true, false),
            ("{sel: {errorCode: null}, condition: sel}", true, false),
            ("{sel: {userIdentity.sessionContext.sessionIssuer|exists: true}, condition: sel}", true, true),
            ("{sel: {userIdentity.sessionContext|contains: role/r}, condition: sel}", true, true),
            ("{sel: {userIdentity.sessionContext.sessionIssuer.arn: other}, condition: sel}", false, false),
        ];
        for (detection, hits, nested) in cases {
            let loaded = rule(detection);
            assert_eq!(loaded.fields & crate::query::record::NESTED != 0, nested, "{detection}");
            let rec = batch.record(0, loaded.fields);
            assert_eq!(rec.get("userIdentity").is_some(), nested, "{detection}: {rec}");
            assert_eq!(loaded.rule.matches(&rec), hits, "{detection}: {rec}");
            assert_eq!(loaded.rule.matches(&batch.event(0, loaded.fields)), hits, "{detection}, in place");
            assert_eq!(loaded.rule.matches(&batch.record(0, ALL_FIELDS)), hits, "{detection}, nested");
        }
    }

    /// Rows read in place (`record::View`) answer every rule as the rebuilt JSON record does: the
    /// shipped SigmaHQ rules and detect's checks, over the real events of testdata/.
    #[test]
    fn rules_read_rows_in_place_as_they_read_the_record() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let set = RuleSet::load(&[root.join("src/query/checks")], true).unwrap();
        let mut builder = crate::ingest::frame::FrameBuilder::default();
        let dirs = ["stratus-red-team/detonation-logs", "panther", "awsdocs", "invictus-ir/CloudTrail", "otrf"];
        for dir in dirs {
            for entry in std::fs::read_dir(root.join("testdata").join(dir)).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                let Ok((_, records)) = crate::ingest::parse::parse(&bytes) else { continue };
                for leaves in &records {
                    // A record without a usable eventTime is no row (as when read).
                    let _ = builder.push(leaves, "test");
                }
            }
        }
        let df = builder.finish().unwrap().lazy().select(columns_read()).collect().unwrap();
        let batch = Batch::new(&df).unwrap();
        let mut hits = 0;
        for loaded in &set.rules {
            for row in 0..df.height() {
                let by_record = loaded.rule.matches(&batch.record(row, loaded.fields));
                let in_place = loaded.rule.matches(&batch.event(row, loaded.fields));
                assert_eq!(in_place, by_record, "{} ({}), row {row}", loaded.rule.meta.title, loaded.file);
                hits += usize::from(by_record);
            }
        }
        assert!(df.height() > 3000 && set.rules.len() > 70 && hits > 100, "{} rows, {hits} hits", df.height());
    }
}
