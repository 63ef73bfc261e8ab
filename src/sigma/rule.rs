//! Loading Sigma YAML (several documents per file), rule metadata, and detection evaluation.

use super::condition::{self, Expr};
use super::correlation::{self, CorrelationDef};
use super::error::{ErrorKind, LoadError};
use super::event::Event;
use super::pattern::{yaml_values, FieldCond};
use serde::Deserialize as _;
use serde_yaml::{Mapping, Value as Yaml};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Severity of a rule, ordered `Informational < Low < Medium < High < Critical` (for `--min-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return Err(format!("unknown level `{s}` (informational, low, medium, high, critical)")),
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        })
    }
}

/// Maturity of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `stable`
    Stable,
    /// `test`
    Test,
    /// `experimental`
    Experimental,
    /// `deprecated`
    Deprecated,
    /// `unsupported`
    Unsupported,
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "stable" => Status::Stable,
            "test" => Status::Test,
            "experimental" => Status::Experimental,
            "deprecated" => Status::Deprecated,
            "unsupported" => Status::Unsupported,
            _ => return Err(format!("unknown status `{s}`")),
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Stable => "stable",
            Status::Test => "test",
            Status::Experimental => "experimental",
            Status::Deprecated => "deprecated",
            Status::Unsupported => "unsupported",
        })
    }
}

/// Metadata shared by detection and correlation rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `title` (required).
    pub title: String,
    /// `id` (a UUID in SigmaHQ rules).
    pub id: Option<String>,
    /// `name`: the short handle correlation rules may use to reference a rule.
    pub name: Option<String>,
    /// `level`; `None` when absent.
    pub level: Option<Level>,
    /// `status`; `None` when absent.
    pub status: Option<Status>,
    /// `description`.
    pub description: Option<String>,
    /// `author` (attribution that must be kept when sharing SigmaHQ rules).
    pub author: Option<String>,
    /// `date` as written.
    pub date: Option<String>,
    /// `modified` as written.
    pub modified: Option<String>,
    /// `tags`, e.g. `attack.t1562.008`.
    pub tags: Vec<String>,
    /// `references`.
    pub references: Vec<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
}

impl Meta {
    /// MITRE ATT&CK technique ids from the tags (`attack.t1562.008` → `T1562.008`).
    pub fn attack_techniques(&self) -> Vec<String> {
        attack_techniques(&self.tags)
    }

    /// MITRE ATT&CK tactic names from the tags (`attack.defense-evasion` → `defense-evasion`).
    pub fn attack_tactics(&self) -> Vec<String> {
        attack_tactics(&self.tags)
    }

    /// Whether `reference` (from a correlation rule) names this rule by `name` or `id`.
    pub fn is_named(&self, reference: &str) -> bool {
        self.name.as_deref() == Some(reference) || self.id.as_deref() == Some(reference)
    }
}

fn attack_suffix(tag: &str) -> Option<&str> {
    let t = tag.trim();
    t.get(..7).filter(|p| p.eq_ignore_ascii_case("attack.")).and_then(|_| t.get(7..))
}

fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |x: &[u8]| x.iter().all(u8::is_ascii_digit);
    b.len() >= 5
        && b[0].eq_ignore_ascii_case(&b't')
        && digits(&b[1..5])
        && (b.len() == 5 || (b.len() == 9 && b[5] == b'.' && digits(&b[6..9])))
}

/// MITRE ATT&CK technique ids among `tags`, uppercased (`attack.t1078.002` → `T1078.002`).
pub fn attack_techniques(tags: &[String]) -> Vec<String> {
    tags.iter().filter_map(|t| attack_suffix(t)).filter(|s| is_technique(s)).map(str::to_ascii_uppercase).collect()
}

/// MITRE ATT&CK tactic names among `tags` (`attack.privilege-escalation`); technique, group
/// (`g0001`) and software (`s0001`) ids are left out.
pub fn attack_tactics(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| attack_suffix(t))
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_'))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A loaded detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Title, id, level, tags ...
    pub meta: Meta,
    names: Vec<String>,
    /// Per selection: OR of AND-groups of detection items.
    selections: Vec<Vec<Vec<FieldCond>>>,
    condition: Expr,
}

impl Rule {
    /// Whether the CloudTrail record `event` (a JSON object, or a row read in place) matches the rule.
    pub fn matches(&self, event: &dyn Event) -> bool {
        self.condition.eval(&mut |i| {
            self.selections.get(i).is_some_and(|groups| groups.iter().any(|g| g.iter().all(|c| c.matches(event))))
        })
    }

    /// The selection names, in the rule's order.
    pub fn selection_names(&self) -> &[String] {
        &self.names
    }

    /// Every field path the rule reads (sorted, once each).
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.selections.iter().flatten().flatten().flat_map(FieldCond::paths).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// When the rule is one selection, one map of `field|cased: [values]` items and the condition
    /// naming it: each item's field and values (in the rule's order). Such a rule matches exactly the
    /// events whose every field is one of its values, case-sensitively: an `IN` list per field in SQL.
    pub fn cased_value_lists(&self) -> Option<Vec<(&str, Vec<&str>)>> {
        let ([groups], Expr::Sel(0)) = (self.selections.as_slice(), &self.condition) else { return None };
        let [items] = groups.as_slice() else { return None };
        items.iter().map(FieldCond::cased_exact).collect()
    }

    /// Whether the rule searches every string of the event (keywords).
    pub fn uses_keywords(&self) -> bool {
        self.selections.iter().flatten().flatten().any(FieldCond::is_keyword)
    }

    /// The values `field` must take (lowercased) for the rule to match, when its condition pins
    /// them (e.g. `selection` with `eventName: [A, B]`); `None` when any value might do. An engine
    /// may skip the rule for events whose `field` is none of them: the answer is the same.
    pub fn required_values(&self, field: &str) -> Option<Vec<String>> {
        let of_selection = |i: usize| -> Option<Vec<String>> {
            // A selection is an OR of AND-groups: each group must pin the field; the union is needed.
            let groups = self.selections.get(i)?;
            let mut out = Vec::new();
            for g in groups {
                out.extend(g.iter().find_map(|c| c.exact_values_of(field))?);
            }
            Some(out)
        };
        fn walk(e: &Expr, sel: &dyn Fn(usize) -> Option<Vec<String>>) -> Option<Vec<String>> {
            let union = |parts: Vec<Option<Vec<String>>>| -> Option<Vec<String>> {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(p?);
                }
                Some(out)
            };
            // Of an AND, any pinned part suffices (the smallest is kept).
            let any = |parts: Vec<Option<Vec<String>>>| parts.into_iter().flatten().min_by_key(Vec::len);
            match e {
                Expr::Sel(i) => sel(*i),
                Expr::Or(v) => union(v.iter().map(|x| walk(x, sel)).collect()),
                Expr::OneOf(v) => union(v.iter().map(|&i| sel(i)).collect()),
                Expr::And(v) => any(v.iter().map(|x| walk(x, sel)).collect()),
                Expr::AllOf(v) => any(v.iter().map(|&i| sel(i)).collect()),
                Expr::Not(_) => None,
            }
        }
        let mut out = walk(&self.condition, &of_selection)?;
        out.sort_unstable();
        out.dedup();
        Some(out)
    }
}

/// One YAML document, loaded.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// A detection rule.
    Rule(Rule),
    /// A correlation rule, to be linked with [`super::link`] once all files are loaded.
    Correlation(CorrelationDef),
}

/// Loader settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Values of `expand` placeholders (`%name%` → name → values). Without an entry, a rule using
    /// the placeholder is refused.
    pub placeholders: Option<&'a HashMap<String, Vec<String>>>,
}

/// Loads every YAML document of `text` (documents separated by `---`), with default options.
pub fn load_rules(text: &str) -> Vec<Result<Loaded, LoadError>> {
    load_rules_with(text, &LoadOptions::default())
}

/// Loads every YAML document of `text`. Empty documents are skipped; a YAML syntax error ends
/// the file, since the parser cannot resynchronise after it.
pub fn load_rules_with(text: &str, opts: &LoadOptions<'_>) -> Vec<Result<Loaded, LoadError>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let fail = |kind, rule, selection| LoadError { document, rule, selection, kind };
        match Yaml::deserialize(doc) {
            Err(e) => {
                let kind = ErrorKind::Yaml { line: e.location().map(|l| l.line()), message: e.to_string() };
                out.push(Err(fail(kind, None, None)));
                break;
            }
            Ok(Yaml::Null) => {}
            Ok(Yaml::Mapping(m)) => {
                let label = get_str(&m, "title").or_else(|| get_str(&m, "id"));
                out.push(load_document(&m, opts).map_err(|(k, sel)| fail(k, label, sel)));
            }
            Ok(_) => out.push(Err(fail(
                ErrorKind::Invalid { key: "document".into(), message: "not a map".into() },
                None,
                None,
            ))),
        }
    }
    out
}

type DocError = (ErrorKind, Option<String>);

fn load_document(m: &Mapping, opts: &LoadOptions<'_>) -> Result<Loaded, DocError> {
    let meta = parse_meta(m).map_err(|k| (k, None))?;
    if m.contains_key("action") {
        return Err((ErrorKind::Unsupported("rule collections (`action: global/reset/repeat`)".into()), None));
    }
    if let Some(c) = m.get("correlation") {
        return correlation::parse_def(meta, c).map(Loaded::Correlation).map_err(|k| (k, None));
    }
    check_logsource(m).map_err(|k| (k, None))?;
    let Some(det) = m.get("detection") else {
        let kind = if m.contains_key("filter") {
            ErrorKind::Unsupported("filter rules".into())
        } else {
            ErrorKind::Missing("detection")
        };
        return Err((kind, None));
    };
    let Yaml::Mapping(det) = det else {
        return Err((invalid("detection", "not a map"), None));
    };
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut condition_text = None;
    for (k, v) in det {
        let Some(key) = k.as_str() else {
            return Err((invalid("detection", "non-string selection name"), None));
        };
        match key {
            "condition" => condition_text = Some(v),
            "timeframe" => return Err((ErrorKind::Unsupported("`timeframe` (use a correlation rule)".into()), None)),
            _ => {
                let sel = compile_selection(v, opts).map_err(|k| (k, Some(key.to_owned())))?;
                names.push(key.to_owned());
                selections.push(sel);
            }
        }
    }
    let condition = match condition_text {
        None => return Err((ErrorKind::Missing("detection.condition"), None)),
        Some(Yaml::String(s)) => condition::parse(s, &names),
        // A list of conditions is their OR.
        Some(Yaml::Sequence(seq)) if !seq.is_empty() => seq
            .iter()
            .map(|c| match c.as_str() {
                Some(s) => condition::parse(s, &names),
                None => Err(invalid("detection.condition", "not a string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Expr::Or),
        Some(_) => Err(invalid("detection.condition", "not a string or list of strings")),
    }
    .map_err(|k| (k, None))?;
    Ok(Loaded::Rule(Rule { meta, names, selections, condition }))
}

fn compile_selection(v: &Yaml, opts: &LoadOptions<'_>) -> Result<Vec<Vec<FieldCond>>, ErrorKind> {
    match v {
        Yaml::Mapping(m) => Ok(vec![compile_map(m, opts)?]),
        Yaml::Sequence(seq) if !seq.is_empty() && seq.iter().all(Yaml::is_mapping) => seq
            .iter()
            .map(|x| match x {
                Yaml::Mapping(m) => compile_map(m, opts),
                _ => Err(invalid("selection", "mixed list")),
            })
            .collect(),
        Yaml::Sequence(seq) if seq.iter().any(|x| x.is_mapping() || x.is_sequence()) => {
            Err(invalid("selection", "a list must hold only maps or only keywords"))
        }
        Yaml::Null => Err(invalid("selection", "empty")),
        other => Ok(vec![vec![FieldCond::keywords(&yaml_values(other)?)?]]),
    }
}

fn compile_map(m: &Mapping, opts: &LoadOptions<'_>) -> Result<Vec<FieldCond>, ErrorKind> {
    if m.is_empty() {
        return Err(invalid("selection", "empty map"));
    }
    m.iter()
        .map(|(k, v)| {
            let key = match k {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                _ => return Err(invalid("selection", "field name is not a string")),
            };
            FieldCond::compile(&key, v, opts.placeholders)
        })
        .collect()
}

fn invalid(key: &str, message: &str) -> ErrorKind {
    ErrorKind::Invalid { key: key.to_owned(), message: message.to_owned() }
}

fn check_logsource(m: &Mapping) -> Result<(), ErrorKind> {
    let Some(Yaml::Mapping(ls)) = m.get("logsource") else {
        return Err(ErrorKind::Missing("logsource"));
    };
    let product = get_str(ls, "product").unwrap_or_default();
    let service = get_str(ls, "service").unwrap_or_default();
    if product.eq_ignore_ascii_case("aws") && service.eq_ignore_ascii_case("cloudtrail") {
        Ok(())
    } else {
        Err(ErrorKind::NotCloudTrail { product, service })
    }
}

/// A scalar as text (numbers too: YAML reads `id: 1234` as a number).
fn get_str(m: &Mapping, key: &str) -> Option<String> {
    match m.get(key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_opt_str(m: &Mapping, key: &'static str) -> Result<Option<String>, ErrorKind> {
    match m.get(key) {
        None | Some(Yaml::Null) => Ok(None),
        Some(_) => get_str(m, key).map(Some).ok_or_else(|| invalid(key, "not a string")),
    }
}

fn get_list(m: &Mapping, key: &'static str) -> Result<Vec<String>, ErrorKind> {
    match m.get(key) {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::Sequence(seq)) => seq
            .iter()
            .map(|x| match x {
                Yaml::String(s) => Ok(s.clone()),
                Yaml::Number(n) => Ok(n.to_string()),
                _ => Err(invalid(key, "list item is not a string")),
            })
            .collect(),
        Some(Yaml::String(s)) => Ok(vec![s.clone()]),
        Some(_) => Err(invalid(key, "not a list")),
    }
}

pub(super) fn parse_meta(m: &Mapping) -> Result<Meta, ErrorKind> {
    let title = get_opt_str(m, "title")?.ok_or(ErrorKind::Missing("title"))?;
    let level = get_opt_str(m, "level")?.map(|s| s.parse::<Level>().map_err(|e| invalid("level", &e))).transpose()?;
    let status =
        get_opt_str(m, "status")?.map(|s| s.parse::<Status>().map_err(|e| invalid("status", &e))).transpose()?;
    Ok(Meta {
        title,
        id: get_opt_str(m, "id")?,
        name: get_opt_str(m, "name")?,
        level,
        status,
        description: get_opt_str(m, "description")?,
        author: get_opt_str(m, "author")?,
        date: get_opt_str(m, "date")?,
        modified: get_opt_str(m, "modified")?,
        tags: get_list(m, "tags")?,
        references: get_list(m, "references")?,
        falsepositives: get_list(m, "falsepositives")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Result<Rule, LoadError> {
        match load_rules(text).into_iter().next() {
            Some(Ok(Loaded::Rule(r))) => Ok(r),
            Some(Err(e)) => Err(e),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn rule(detection: &str) -> Result<Rule, LoadError> {
        one(&format!(
            "title: t\nid: x-1\nlevel: high\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
        ))
    }

    fn kind(detection: &str) -> Option<ErrorKind> {
        rule(detection).err().map(|e| e.kind)
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(Level::Critical > Level::High && Level::Low > Level::Informational);
        assert_eq!("Medium".parse::<Level>(), Ok(Level::Medium));
        assert!("severe".parse::<Level>().is_err());
        assert_eq!("test".parse::<Status>(), Ok(Status::Test));
    }

    #[test]
    fn attack_tags() {
        let tags: Vec<String> =
            ["attack.t1562.008", "attack.defense-evasion", "attack.T1078", "attack.g0016", "cve.2021-1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(attack_techniques(&tags), vec!["T1562.008", "T1078"]);
        assert_eq!(attack_tactics(&tags), vec!["defense-evasion"]);
    }

    #[test]
    fn selection_map_and_list_of_maps() {
        let r = rule("  sel:\n    - eventName: A\n      eventSource: s\n    - eventName: B\n  condition: sel\n");
        let r = r.map_err(|e| e.to_string());
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"eventName": "a", "eventSource": "S"}))));
        assert!(r.as_ref().is_ok_and(|r| !r.matches(&json!({"eventName": "A"}))));
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"eventName": "B"}))));
    }

    #[test]
    fn keyword_lists() {
        let r =
            rule("  keywords:\n    - 'evil*cmd'\n    - trufflehog\n  condition: keywords\n").map_err(|e| e.to_string());
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"userAgent": "TruffleHog/3"}))));
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"a": {"b": ["x EVILxxCMD y"]}}))));
        assert!(r.as_ref().is_ok_and(|r| !r.matches(&json!({"a": "evil"}))));
        // Keys are not searched, numbers are not string leaves.
        assert!(r.as_ref().is_ok_and(|r| !r.matches(&json!({"trufflehog": 1}))));
        let single = rule("  kw: StopLogging\n  condition: kw\n").map_err(|e| e.to_string());
        assert!(single.is_ok_and(|r| r.matches(&json!({"eventName": "StopLogging"}))));
    }

    #[test]
    fn condition_list_is_or() {
        let r = rule("  a:\n    x: 1\n  b:\n    y: 2\n  condition:\n    - a\n    - b\n").map_err(|e| e.to_string());
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"y": 2}))));
        assert!(r.as_ref().is_ok_and(|r| !r.matches(&json!({"y": 3}))));
    }

    #[test]
    fn all_of_pattern_without_match() {
        let r = rule("  sel_a:\n    x: 1\n  sel_b:\n    y: 2\n  condition: all of sel_*\n").map_err(|e| e.to_string());
        assert!(r.as_ref().is_ok_and(|r| !r.matches(&json!({"x": 1}))));
        assert!(r.as_ref().is_ok_and(|r| r.matches(&json!({"x": 1, "y": 2}))));
        assert!(matches!(kind("  sel_a:\n    x: 1\n  condition: all of zz*\n"), Some(ErrorKind::EmptyPattern(_))));
    }

    #[test]
    fn load_errors_are_precise() {
        assert_eq!(
            kind("  sel:\n    a|xyz: 1\n  condition: sel\n"),
            Some(ErrorKind::UnsupportedModifier("xyz".into()))
        );
        assert_eq!(
            kind("  sel:\n    a: 1\n  condition: sel and sel2\n"),
            Some(ErrorKind::UnknownSelection("sel2".into()))
        );
        assert_eq!(
            kind("  sel:\n    a|expand: '%foo%'\n  condition: sel\n"),
            Some(ErrorKind::Placeholder("foo".into()))
        );
        assert!(matches!(kind("  sel:\n    a|re: '(x'\n  condition: sel\n"), Some(ErrorKind::Regex { .. })));
        assert_eq!(kind("  sel:\n    a: 1\n"), Some(ErrorKind::Missing("detection.condition")));
        let e = rule("  sel:\n    a|xyz: 1\n  condition: sel\n").err();
        assert_eq!(e.and_then(|e| e.selection), Some("sel".to_owned()));
        let win = one("title: w\nlogsource: {product: windows}\ndetection: {s: {a: 1}, condition: s}\n");
        assert!(matches!(win.map_err(|e| e.kind), Err(ErrorKind::NotCloudTrail { .. })));
        let bad_level = one("title: w\nlevel: severe\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {a: 1}, condition: s}\n");
        assert!(matches!(bad_level.map_err(|e| e.kind), Err(ErrorKind::Invalid { .. })));
    }

    #[test]
    fn multi_document_and_yaml_errors() {
        let text = "title: a\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName: A}, condition: s}\n---\n---\ntitle: b\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName|bogus: B}, condition: s}\n---\ntitle: c\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName: C}, condition: s}\n";
        let out = load_rules(text);
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], Ok(Loaded::Rule(r)) if r.meta.title == "a"));
        assert!(matches!(&out[1], Err(e) if e.document == 3 && e.rule.as_deref() == Some("b")));
        assert!(matches!(&out[2], Ok(Loaded::Rule(r)) if r.matches(&json!({"eventName": "c"}))));
        let bad = load_rules("title: a\ndetection: [unclosed\n");
        assert!(matches!(&bad[..], [Err(LoadError { kind: ErrorKind::Yaml { line: Some(_), .. }, .. })]));
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for text in [
            "",
            "- 1\n- 2",
            "title: [1]\n",
            "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: 5\n",
            "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: ~, condition: s}\n",
            "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {a: {b: 1}}, condition: s}\n",
            "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: [{a: 1}, b], condition: s}\n",
            "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {'a|windash': '-a -b -c -d -e -f -g -h'}, condition: s}\n",
            "title: x\ncorrelation: 3\n",
        ] {
            for r in load_rules(text) {
                assert!(r.is_err(), "{text}");
            }
        }
    }
}
