//! Values, wildcards and modifiers: one detection item (`field|mod1|mod2: values`) compiled into
//! a [`FieldCond`] that tests an event.

use super::error::ErrorKind;
use super::event::{leaf_text, Event, FieldPath, Leaf};
use base64::Engine as _;
use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// Upper bound of variants one value may expand into (`windash`, `expand`), so a hostile rule
/// cannot blow up memory.
const MAX_VARIANTS: usize = 4096;
/// Compiled-regex size limit; the regex crate refuses bigger programs with an error.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// One detection item, e.g. `eventName|startswith: [Delete, Stop]`.
#[derive(Debug, Clone)]
pub(super) struct FieldCond {
    target: Target,
    test: Test,
}

/// What the values are compared with.
#[derive(Debug, Clone)]
enum Target {
    /// The values at a field path.
    Field(FieldPath),
    /// Every string leaf of the event (keyword search).
    Keywords,
}

#[derive(Debug, Clone)]
enum Test {
    /// `|exists: true/false`; JSON null counts as absent.
    Exists(bool),
    /// Any (or, with `all`, every) matcher must match.
    Values { matchers: Vec<Matcher>, all: bool },
}

/// One value of a detection item, compiled.
#[derive(Debug, Clone)]
enum Matcher {
    /// `null`: the field is missing or JSON null.
    Null,
    /// A plain / wildcard / position-modified string.
    Str(StrPattern),
    /// Variants from `windash`, `base64offset` or `expand`: any one suffices.
    AnyStr(Vec<StrPattern>),
    Regex(Regex),
    Cidr(IpNet),
    Num(NumOp, f64),
    FieldRef {
        path: FieldPath,
        pos: Position,
        cased: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Base64,
    Base64Offset,
    Windash,
    Expand,
}

/// A string pattern after wildcard parsing. Case-insensitive literals are stored lowercased.
#[derive(Debug, Clone)]
pub(super) struct StrPattern {
    kind: StrKind,
    cased: bool,
    ascii: bool,
}

#[derive(Debug, Clone)]
enum StrKind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Wildcards in the middle: an anchored regex.
    Regex(Regex),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    Star,
    One,
}

/// Sigma string escapes: `\*`, `\?`, `\\` escape; a backslash before anything else is literal.
fn tokenize(s: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                let t = if c == '*' { Token::Star } else { Token::One };
                // `**` is the same as `*`.
                if !(t == Token::Star && out.last() == Some(&Token::Star)) {
                    out.push(t);
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    out
}

fn escape_sigma(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl StrPattern {
    /// Compiles a Sigma string (wildcards and escapes honoured) with a position modifier.
    fn new(value: &str, pos: Position, cased: bool) -> Result<Self, ErrorKind> {
        let mut toks = tokenize(value);
        if matches!(pos, Position::Contains | Position::EndsWith) && toks.first() != Some(&Token::Star) {
            toks.insert(0, Token::Star);
        }
        if matches!(pos, Position::Contains | Position::StartsWith) && toks.last() != Some(&Token::Star) {
            toks.push(Token::Star);
        }
        let lit = |s: &str| {
            if cased {
                s.to_owned()
            } else {
                s.to_lowercase()
            }
        };
        let kind = match toks.as_slice() {
            [] => StrKind::Exact(String::new()),
            [Token::Lit(a)] => StrKind::Exact(lit(a)),
            [Token::Star] => StrKind::Contains(String::new()),
            [Token::Lit(a), Token::Star] => StrKind::Prefix(lit(a)),
            [Token::Star, Token::Lit(a)] => StrKind::Suffix(lit(a)),
            [Token::Star, Token::Lit(a), Token::Star] => StrKind::Contains(lit(a)),
            _ => {
                let mut re = String::from("^");
                for t in &toks {
                    match t {
                        Token::Lit(s) => re.push_str(&regex::escape(s)),
                        Token::Star => re.push_str(".*"),
                        Token::One => re.push('.'),
                    }
                }
                re.push('$');
                let r = RegexBuilder::new(&re)
                    .case_insensitive(!cased)
                    .dot_matches_new_line(true)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| ErrorKind::Regex { pattern: value.to_owned(), message: e.to_string() })?;
                StrKind::Regex(r)
            }
        };
        let ascii = match &kind {
            StrKind::Exact(s) | StrKind::Prefix(s) | StrKind::Suffix(s) | StrKind::Contains(s) => s.is_ascii(),
            StrKind::Regex(_) => true,
        };
        Ok(StrPattern { kind, cased, ascii })
    }

    /// Whether `text` matches.
    pub(super) fn matches(&self, text: &str) -> bool {
        if let StrKind::Regex(r) = &self.kind {
            return r.is_match(text);
        }
        if self.cased {
            return self.matches_exact_case(text);
        }
        if self.ascii && text.is_ascii() {
            let t = text.as_bytes();
            return match &self.kind {
                StrKind::Exact(p) => t.eq_ignore_ascii_case(p.as_bytes()),
                StrKind::Prefix(p) => t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p.as_bytes()),
                StrKind::Suffix(p) => t.len() >= p.len() && t[t.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes()),
                StrKind::Contains(p) => contains_ascii_ci(t, p.as_bytes()),
                StrKind::Regex(_) => false,
            };
        }
        // Unicode case folding needs the lowered text; rare in CloudTrail values.
        self.matches_exact_case(&text.to_lowercase())
    }

    fn matches_exact_case(&self, t: &str) -> bool {
        match &self.kind {
            StrKind::Exact(p) => t == p,
            StrKind::Prefix(p) => t.starts_with(p.as_str()),
            StrKind::Suffix(p) => t.ends_with(p.as_str()),
            StrKind::Contains(p) => t.contains(p.as_str()),
            StrKind::Regex(r) => r.is_match(t),
        }
    }
}

/// `f` of `text` lowercased as a rule's value is (`str::to_lowercase`): a short ASCII text (every
/// event name) lowered on the stack, with no allocation per event.
pub fn with_lowercase<R>(text: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    match buf.get_mut(..text.len()).filter(|_| text.is_ascii()) {
        Some(lower) => {
            lower.copy_from_slice(text.as_bytes());
            lower.make_ascii_lowercase();
            f(std::str::from_utf8(lower).expect("ASCII lowercased is ASCII"))
        }
        None => f(&text.to_lowercase()),
    }
}

/// ASCII case-insensitive substring search; `needle` is already lowercase.
fn contains_ascii_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    (0..=hay.len() - needle.len())
        .any(|i| hay[i].to_ascii_lowercase() == first && hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// Parsed modifier chain of one detection key.
#[derive(Debug, Default)]
struct Modifiers {
    pos: Option<Position>,
    all: bool,
    cased: bool,
    re: bool,
    re_i: bool,
    re_m: bool,
    re_s: bool,
    cidr: bool,
    num: Option<NumOp>,
    exists: bool,
    fieldref: bool,
    transforms: Vec<Transform>,
}

impl Modifiers {
    fn parse(mods: &[&str]) -> Result<Self, ErrorKind> {
        let mut m = Modifiers::default();
        let mut types = 0;
        for &name in mods {
            match name {
                "contains" | "startswith" | "endswith" => {
                    if m.pos.is_some() {
                        return Err(ErrorKind::Modifier("more than one of contains/startswith/endswith".into()));
                    }
                    m.pos = Some(match name {
                        "contains" => Position::Contains,
                        "startswith" => Position::StartsWith,
                        _ => Position::EndsWith,
                    });
                }
                "all" => m.all = true,
                "cased" => m.cased = true,
                "re" => {
                    m.re = true;
                    types += 1;
                }
                "i" | "ignorecase" => m.re_i = true,
                "m" | "multiline" => m.re_m = true,
                "s" | "dotall" => m.re_s = true,
                "cidr" => {
                    m.cidr = true;
                    types += 1;
                }
                "gt" | "gte" | "lt" | "lte" => {
                    m.num = Some(match name {
                        "gt" => NumOp::Gt,
                        "gte" => NumOp::Gte,
                        "lt" => NumOp::Lt,
                        _ => NumOp::Lte,
                    });
                    types += 1;
                }
                "exists" => {
                    m.exists = true;
                    types += 1;
                }
                "fieldref" => {
                    m.fieldref = true;
                    types += 1;
                }
                "base64" => m.transforms.push(Transform::Base64),
                "base64offset" => m.transforms.push(Transform::Base64Offset),
                "windash" => m.transforms.push(Transform::Windash),
                "expand" => m.transforms.push(Transform::Expand),
                // utf16*/wide re-encode the value as UTF-16 bytes: meaningless against JSON text.
                other => return Err(ErrorKind::UnsupportedModifier(other.to_owned())),
            }
        }
        if types > 1 {
            return Err(ErrorKind::Modifier("only one of re/cidr/gt/gte/lt/lte/exists/fieldref may be used".into()));
        }
        if (m.re_i || m.re_m || m.re_s) && !m.re {
            return Err(ErrorKind::Modifier("i/m/s need `re`".into()));
        }
        let typed = m.re || m.cidr || m.num.is_some() || m.exists;
        if typed && (m.pos.is_some() || !m.transforms.is_empty() || m.cased) {
            return Err(ErrorKind::Modifier(
                "re/cidr/gt/gte/lt/lte/exists take no contains/startswith/endswith/cased/base64/windash/expand".into(),
            ));
        }
        if m.fieldref && !m.transforms.is_empty() {
            return Err(ErrorKind::Modifier("fieldref takes no value transformation".into()));
        }
        if m.exists && m.all {
            return Err(ErrorKind::Modifier("exists takes no `all`".into()));
        }
        Ok(m)
    }

    fn is_typed(&self) -> bool {
        self.re || self.cidr || self.num.is_some() || self.exists || self.fieldref
    }
}

/// A YAML scalar as Sigma text; `None` for null.
fn scalar_text(v: &serde_yaml::Value) -> Result<Option<String>, ErrorKind> {
    match v {
        serde_yaml::Value::Null => Ok(None),
        serde_yaml::Value::Bool(b) => Ok(Some(b.to_string())),
        serde_yaml::Value::Number(n) => Ok(Some(n.to_string())),
        serde_yaml::Value::String(s) => Ok(Some(s.clone())),
        serde_yaml::Value::Tagged(t) => scalar_text(&t.value),
        serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => Err(ErrorKind::Invalid {
            key: "value".into(),
            message: "nested list or map where a value is expected".into(),
        }),
    }
}

/// The values of a detection item: a scalar or a list of scalars.
pub(super) fn yaml_values(v: &serde_yaml::Value) -> Result<Vec<Option<String>>, ErrorKind> {
    match v {
        serde_yaml::Value::Sequence(seq) => {
            if seq.is_empty() {
                return Err(ErrorKind::Invalid { key: "value".into(), message: "empty value list".into() });
            }
            seq.iter().map(scalar_text).collect()
        }
        other => Ok(vec![scalar_text(other)?]),
    }
}

impl FieldCond {
    /// The field paths this item reads: its own and a `fieldref`'s (none for a keyword search).
    pub(super) fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Target::Field(p) = &self.target {
            out.push(p.as_str());
        }
        if let Test::Values { matchers, .. } = &self.test {
            for m in matchers {
                if let Matcher::FieldRef { path, .. } = m {
                    out.push(path.as_str());
                }
            }
        }
        out
    }

    /// Whether this item searches every string leaf (a keyword).
    pub(super) fn is_keyword(&self) -> bool {
        matches!(self.target, Target::Keywords)
    }

    /// When this item can match only if `field` equals one of a few strings (ignoring case): those
    /// strings, lowercased. `None` when the item says nothing that narrow about `field`.
    pub(super) fn exact_values_of(&self, field: &str) -> Option<Vec<String>> {
        let Target::Field(p) = &self.target else { return None };
        if p.as_str() != field {
            return None;
        }
        let Test::Values { matchers, all } = &self.test else { return None };
        if *all && matchers.len() != 1 {
            return None;
        }
        matchers
            .iter()
            .map(|m| match m {
                Matcher::Str(StrPattern { kind: StrKind::Exact(v), .. }) => Some(v.to_lowercase()),
                _ => None,
            })
            .collect()
    }

    /// When this item is `field|cased: [values]` (case-sensitive, exact, no wildcards): the field
    /// path and the values, as written.
    pub(super) fn cased_exact(&self) -> Option<(&str, Vec<&str>)> {
        let Target::Field(p) = &self.target else { return None };
        let Test::Values { matchers, all } = &self.test else { return None };
        if *all && matchers.len() != 1 {
            return None;
        }
        let values = matchers
            .iter()
            .map(|m| match m {
                Matcher::Str(StrPattern { kind: StrKind::Exact(v), cased: true, .. }) => Some(v.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some((p.as_str(), values))
    }

    /// Compiles `key: value` of a selection map. An empty field name (`'|all'`) searches all
    /// string leaves like a keyword.
    pub(super) fn compile(
        key: &str,
        value: &serde_yaml::Value,
        placeholders: Option<&HashMap<String, Vec<String>>>,
    ) -> Result<Self, ErrorKind> {
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default();
        let mods: Vec<&str> = parts.collect();
        let mut m = Modifiers::parse(&mods)?;
        let target = if field.is_empty() {
            if m.pos.is_none() && !m.is_typed() {
                m.pos = Some(Position::Contains);
            }
            Target::Keywords
        } else {
            Target::Field(FieldPath::parse(field))
        };
        let values = yaml_values(value)?;
        if m.exists {
            let [Some(v)] = values.as_slice() else {
                return Err(ErrorKind::Modifier("exists takes one value, true or false".into()));
            };
            let b = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(ErrorKind::Modifier(format!("exists takes true or false, not `{v}`"))),
            };
            return Ok(FieldCond { target, test: Test::Exists(b) });
        }
        let matchers = values
            .iter()
            .map(|v| compile_value(v.as_deref(), &m, &target, placeholders))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FieldCond { target, test: Test::Values { matchers, all: m.all } })
    }

    /// A keyword detection: plain strings matched (implicit contains) against all string leaves.
    pub(super) fn keywords(values: &[Option<String>]) -> Result<Self, ErrorKind> {
        let matchers = values
            .iter()
            .map(|v| match v {
                Some(s) => Ok(Matcher::Str(StrPattern::new(s, Position::Contains, false)?)),
                None => Err(ErrorKind::Invalid { key: "keywords".into(), message: "null keyword".into() }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FieldCond { target: Target::Keywords, test: Test::Values { matchers, all: false } })
    }

    /// Whether the event satisfies this item.
    pub(super) fn matches(&self, event: &dyn Event) -> bool {
        match &self.test {
            Test::Exists(want) => {
                let present = match &self.target {
                    Target::Field(p) => event.any(p, &mut |v| !v.is_null()),
                    Target::Keywords => event.any_string_leaf(&mut |_| true),
                };
                present == *want
            }
            Test::Values { matchers, all: true } => matchers.iter().all(|m| self.one_matches(m, event)),
            Test::Values { matchers, all: false } => {
                if let [m] = matchers.as_slice() {
                    return self.one_matches(m, event);
                }
                // One walk of the path for all values (the common `eventName: [a, b, c]`).
                let hit = match &self.target {
                    Target::Field(p) => event.any(p, &mut |v| matchers.iter().any(|m| m.matches_value(v, event))),
                    Target::Keywords => {
                        event.any_string_leaf(&mut |s| matchers.iter().any(|m| m.matches_str(s, event)))
                    }
                };
                // `null` also matches when nothing is found, which the walk above cannot see.
                hit || (matchers.iter().any(|m| matches!(m, Matcher::Null)) && self.one_matches(&Matcher::Null, event))
            }
        }
    }

    fn one_matches(&self, m: &Matcher, event: &dyn Event) -> bool {
        match (&self.target, m) {
            (Target::Field(p), Matcher::Null) => {
                let mut found = false;
                let null = event.any(p, &mut |v| {
                    found = true;
                    v.is_null()
                });
                null || !found
            }
            (Target::Field(p), m) => event.any(p, &mut |v| m.matches_value(v, event)),
            (Target::Keywords, m) => event.any_string_leaf(&mut |s| m.matches_str(s, event)),
        }
    }
}

impl Matcher {
    fn matches_value(&self, v: Leaf<'_>, event: &dyn Event) -> bool {
        match self {
            Matcher::Null => v.is_null(),
            Matcher::Num(op, n) => {
                let x = match v {
                    Leaf::Json(Value::Number(x)) => x.as_f64(),
                    Leaf::Json(Value::String(s)) => s.trim().parse::<f64>().ok(),
                    Leaf::Text(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                x.is_some_and(|x| match op {
                    NumOp::Gt => x > *n,
                    NumOp::Gte => x >= *n,
                    NumOp::Lt => x < *n,
                    NumOp::Lte => x <= *n,
                })
            }
            _ => leaf_text(v).is_some_and(|t| self.matches_str(&t, event)),
        }
    }

    fn matches_str(&self, t: &str, event: &dyn Event) -> bool {
        match self {
            Matcher::Null => false,
            Matcher::Str(p) => p.matches(t),
            Matcher::AnyStr(ps) => ps.iter().any(|p| p.matches(t)),
            Matcher::Regex(r) => r.is_match(t),
            Matcher::Cidr(net) => t.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
            Matcher::Num(..) => self.matches_value(Leaf::Text(t), event),
            Matcher::FieldRef { path, pos, cased } => event.any(path, &mut |r| {
                leaf_text(r).is_some_and(|rt| {
                    // The referenced value is literal text: wildcards in it are not special.
                    StrPattern::new(&escape_sigma(&rt), *pos, *cased).is_ok_and(|p| p.matches(t))
                })
            }),
        }
    }
}

fn compile_value(
    v: Option<&str>,
    m: &Modifiers,
    target: &Target,
    placeholders: Option<&HashMap<String, Vec<String>>>,
) -> Result<Matcher, ErrorKind> {
    let Some(v) = v else {
        if m.is_typed() || m.pos.is_some() || !m.transforms.is_empty() {
            return Err(ErrorKind::Modifier("null takes no modifier".into()));
        }
        if matches!(target, Target::Keywords) {
            return Err(ErrorKind::Modifier("null needs a field name".into()));
        }
        return Ok(Matcher::Null);
    };
    if m.re {
        let r = RegexBuilder::new(v)
            .case_insensitive(m.re_i)
            .multi_line(m.re_m)
            .dot_matches_new_line(m.re_s)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| ErrorKind::Regex { pattern: v.to_owned(), message: e.to_string() })?;
        return Ok(Matcher::Regex(r));
    }
    if m.cidr {
        let net = v
            .trim()
            .parse::<IpNet>()
            .or_else(|_| v.trim().parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| ErrorKind::Cidr(v.to_owned()))?;
        return Ok(Matcher::Cidr(net));
    }
    if let Some(op) = m.num {
        let n = v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| ErrorKind::Modifier(format!("`{v}` is not a number")))?;
        return Ok(Matcher::Num(op, n));
    }
    let pos = m.pos.unwrap_or(Position::Exact);
    if m.fieldref {
        if matches!(target, Target::Keywords) {
            return Err(ErrorKind::Modifier("fieldref needs a field name".into()));
        }
        return Ok(Matcher::FieldRef { path: FieldPath::parse(v), pos, cased: m.cased });
    }
    let mut variants = vec![v.to_owned()];
    // Base64 text is case-significant: folding case would match other plaintexts.
    let mut cased = m.cased;
    for t in &m.transforms {
        variants = match t {
            Transform::Expand => expand(&variants, placeholders)?,
            Transform::Windash => windash(&variants)?,
            Transform::Base64 | Transform::Base64Offset => {
                cased = true;
                base64_variants(&variants, *t == Transform::Base64Offset)?
            }
        };
    }
    let mut pats = variants.iter().map(|s| StrPattern::new(s, pos, cased)).collect::<Result<Vec<_>, _>>()?;
    Ok(if pats.len() == 1 {
        match pats.pop() {
            Some(p) => Matcher::Str(p),
            None => Matcher::AnyStr(pats),
        }
    } else {
        Matcher::AnyStr(pats)
    })
}

/// `%name%` placeholders replaced by every value of the placeholder (cartesian product).
fn expand(values: &[String], placeholders: Option<&HashMap<String, Vec<String>>>) -> Result<Vec<String>, ErrorKind> {
    let mut out = Vec::new();
    for v in values {
        let mut acc = vec![String::new()];
        let mut rest = v.as_str();
        while let Some(start) = rest.find('%') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else { break };
            let name = &after[..end];
            let subs = placeholders
                .and_then(|p| p.get(name))
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ErrorKind::Placeholder(name.to_owned()))?;
            let prefix = &rest[..start];
            if acc.len().saturating_mul(subs.len()) > MAX_VARIANTS {
                return Err(ErrorKind::Modifier("expand gives too many variants".into()));
            }
            acc = acc.iter().flat_map(|a| subs.iter().map(move |s| format!("{a}{prefix}{s}"))).collect();
            rest = &after[end + 1..];
        }
        out.extend(acc.into_iter().map(|a| format!("{a}{rest}")));
        if out.len() > MAX_VARIANTS {
            return Err(ErrorKind::Modifier("expand gives too many variants".into()));
        }
    }
    Ok(out)
}

/// Dashes `windash` swaps for one another (hyphen, slash, en dash, em dash, horizontal bar).
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every permutation of the dash characters that start a command-line flag
/// (pySigma's `\B[-/]\b`: not after a word character, followed by one).
fn windash(values: &[String]) -> Result<Vec<String>, ErrorKind> {
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = Vec::new();
    for v in values {
        let chars: Vec<char> = v.chars().collect();
        let spots: Vec<usize> = (0..chars.len())
            .filter(|&i| {
                matches!(chars[i], '-' | '/')
                    && !word(i.checked_sub(1).and_then(|j| chars.get(j)))
                    && word(chars.get(i + 1))
            })
            .collect();
        let count = u32::try_from(spots.len())
            .ok()
            .and_then(|n| DASHES.len().checked_pow(n))
            .filter(|&n| n <= MAX_VARIANTS)
            .ok_or_else(|| ErrorKind::Modifier("windash gives too many variants".into()))?;
        for mut k in 0..count {
            let mut c = chars.clone();
            for &s in &spots {
                c[s] = DASHES[k % DASHES.len()];
                k /= DASHES.len();
            }
            out.push(c.into_iter().collect());
        }
        if out.len() > MAX_VARIANTS {
            return Err(ErrorKind::Modifier("windash gives too many variants".into()));
        }
    }
    Ok(out)
}

/// `base64`: the value encoded; `base64offset`: the three encodings of the value at byte
/// offsets 0, 1, 2 of a longer text, trimmed of the characters that depend on the neighbours
/// (pySigma's algorithm).
fn base64_variants(values: &[String], offset: bool) -> Result<Vec<String>, ErrorKind> {
    let eng = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for v in values {
        let toks = tokenize(v);
        let plain = match toks.as_slice() {
            [] => String::new(),
            [Token::Lit(s)] => s.clone(),
            _ => return Err(ErrorKind::Modifier(format!("base64 of a value with wildcards: `{v}`"))),
        };
        if !offset {
            out.push(escape_sigma(&eng.encode(plain.as_bytes())));
            continue;
        }
        let len = plain.len();
        for i in 0..3usize {
            let mut buf = vec![b' '; i];
            buf.extend_from_slice(plain.as_bytes());
            let enc = eng.encode(&buf);
            let start = [0usize, 2, 3][i];
            let trim_end = [0usize, 3, 2][(len + i) % 3];
            let end = enc.len().saturating_sub(trim_end);
            if let Some(s) = enc.get(start..end.max(start)) {
                out.push(escape_sigma(s));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The dispatch key is lowered as `str::to_lowercase` lowers it, on the stack or not: short,
    /// 64 bytes, longer, and non-ASCII texts.
    #[test]
    fn with_lowercase_is_to_lowercase() {
        let long = "A".repeat(64);
        let longer = "B".repeat(65);
        for text in ["", "GetCallerIdentity", "already lower", "ÉVÉNEMENT", "Straße-İ", long.as_str(), longer.as_str()]
        {
            assert_eq!(with_lowercase(text, str::to_owned), text.to_lowercase(), "{text}");
        }
    }

    fn cond(yaml: &str) -> Result<FieldCond, ErrorKind> {
        let v: serde_yaml::Value =
            serde_yaml::from_str(yaml).map_err(|e| ErrorKind::Yaml { line: None, message: e.to_string() })?;
        let serde_yaml::Value::Mapping(m) = v else {
            return Err(ErrorKind::Missing("map"));
        };
        let (k, v) = m.iter().next().ok_or(ErrorKind::Missing("key"))?;
        FieldCond::compile(k.as_str().unwrap_or_default(), v, None)
    }

    fn hit(yaml: &str, ev: Value) -> bool {
        match cond(yaml) {
            Ok(c) => c.matches(&ev),
            Err(e) => panic!("{yaml}: {e}"),
        }
    }

    #[test]
    fn plain_is_case_insensitive_exact() {
        assert!(hit("eventName: stoplogging", json!({"eventName": "StopLogging"})));
        assert!(!hit("eventName: StopLog", json!({"eventName": "StopLogging"})));
        assert!(!hit("eventName|cased: stoplogging", json!({"eventName": "StopLogging"})));
        assert!(hit("eventName|cased: StopLogging", json!({"eventName": "StopLogging"})));
        assert!(hit("a: ÉTÉ", json!({"a": "été"})));
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(hit("a: 'Stop*'", json!({"a": "StopLogging"})));
        assert!(hit("a: 'S?op*ing'", json!({"a": "stoplogging"})));
        assert!(!hit("a: 'S?op'", json!({"a": "Stoop"})));
        assert!(hit(r"a: 'x\*y'", json!({"a": "x*y"})));
        assert!(!hit(r"a: 'x\*y'", json!({"a": "xzzy"})));
        assert!(hit(r"a: 'x\?'", json!({"a": "x?"})));
        assert!(!hit(r"a: 'x\?'", json!({"a": "xa"})));
        // `\\` is one backslash, then `*` is a wildcard again.
        assert!(hit(r"a: 'C:\\*'", json!({"a": r"C:\Windows"})));
        // A backslash before another char is literal.
        assert!(hit(r"a: 'C:\Windows'", json!({"a": r"c:\windows"})));
        assert!(hit("a: '*'", json!({"a": ""})));
        assert!(!hit("a: '*'", json!({"b": "x"})));
    }

    #[test]
    fn null_missing_empty() {
        assert!(hit("a: null", json!({"b": 1})));
        assert!(hit("a: null", json!({"a": null})));
        assert!(!hit("a: null", json!({"a": ""})));
        assert!(hit("a: ''", json!({"a": ""})));
        assert!(!hit("a: ''", json!({"b": ""})));
        assert!(!hit("a: ''", json!({"a": null})));
        assert!(hit("a: [null, x]", json!({})));
        assert!(hit("a: [null, x]", json!({"a": "X"})));
        assert!(!hit("a: [null, x]", json!({"a": "y"})));
    }

    #[test]
    fn lists_any_and_all() {
        assert!(hit("a: [x, y]", json!({"a": "y"})));
        assert!(!hit("a|all: [x, y]", json!({"a": "y"})));
        assert!(hit("a|contains|all: [foo, bar]", json!({"a": "xbarxFOO"})));
        assert!(!hit("a|contains|all: [foo, bar]", json!({"a": "xbarx"})));
        // `all` over the elements of an array field: each value may match a different element.
        assert!(hit("a|all: [x, y]", json!({"a": ["x", "y"]})));
    }

    #[test]
    fn positions() {
        assert!(hit("a|startswith: Del", json!({"a": "DeleteTrail"})));
        assert!(!hit("a|startswith: Trail", json!({"a": "DeleteTrail"})));
        assert!(hit("a|endswith: trail", json!({"a": "DeleteTrail"})));
        assert!(!hit("a|endswith: Del", json!({"a": "DeleteTrail"})));
        assert!(cond("a|contists: x").is_err());
        assert!(hit("a|contains: 'e*T'", json!({"a": "DeleteTrail"})));
    }

    #[test]
    fn objects_numbers_booleans() {
        let ev = json!({"rp": {"b": 2, "a": "x"}, "n": 123, "f": 1.5, "t": true});
        assert!(hit(r#"rp: '{"a":"x","b":2}'"#, ev.clone()));
        assert!(hit(r#"rp|contains: '"b":2'"#, ev.clone()));
        assert!(hit("n: 123", ev.clone()));
        assert!(hit("n: '12*'", ev.clone()));
        assert!(hit("f: 1.5", ev.clone()));
        assert!(hit("t: true", ev.clone()));
        assert!(!hit("t: false", ev));
    }

    #[test]
    fn regex_flags() {
        assert!(hit("a|re: '^Stop.*'", json!({"a": "StopLogging"})));
        assert!(!hit("a|re: '^stop'", json!({"a": "StopLogging"})));
        assert!(hit("a|re|i: '^stop'", json!({"a": "StopLogging"})));
        assert!(!hit("a|re: '^b'", json!({"a": "a\nb"})));
        assert!(hit("a|re|m: '^b'", json!({"a": "a\nb"})));
        assert!(!hit("a|re: 'a.b'", json!({"a": "a\nb"})));
        assert!(hit("a|re|s: 'a.b'", json!({"a": "a\nb"})));
        assert!(matches!(cond("a|re: '(?<=x)y'"), Err(ErrorKind::Regex { .. })));
        assert!(matches!(cond("a|i: x"), Err(ErrorKind::Modifier(_))));
    }

    #[test]
    fn cidr_v4_v6() {
        assert!(hit("ip|cidr: 10.0.0.0/8", json!({"ip": "10.2.3.4"})));
        assert!(!hit("ip|cidr: 10.0.0.0/8", json!({"ip": "11.2.3.4"})));
        assert!(!hit("ip|cidr: 10.0.0.0/8", json!({"ip": "AWS Internal"})));
        assert!(hit("ip|cidr: '2001:db8::/32'", json!({"ip": "2001:db8::1"})));
        assert!(!hit("ip|cidr: '2001:db8::/32'", json!({"ip": "2001:db9::1"})));
        assert!(matches!(cond("ip|cidr: nope"), Err(ErrorKind::Cidr(_))));
    }

    #[test]
    fn numeric_comparisons() {
        assert!(hit("n|gt: 5", json!({"n": 6})));
        assert!(!hit("n|gt: 5", json!({"n": 5})));
        assert!(hit("n|gte: 5", json!({"n": 5})));
        assert!(hit("n|lt: 5", json!({"n": "4.5"})));
        assert!(!hit("n|lte: 5", json!({"n": "x"})));
        assert!(matches!(cond("n|gt: abc"), Err(ErrorKind::Modifier(_))));
    }

    #[test]
    fn exists_modifier() {
        assert!(hit("a|exists: true", json!({"a": ""})));
        assert!(!hit("a|exists: true", json!({"a": null})));
        assert!(hit("a|exists: false", json!({"b": 1})));
        assert!(!hit("a.b|exists: false", json!({"a": {"b": 1}})));
    }

    #[test]
    fn base64_and_offsets() {
        // base64("StopLogging") = U3RvcExvZ2dpbmc=
        assert!(hit("a|base64: StopLogging", json!({"a": "U3RvcExvZ2dpbmc="})));
        assert!(!hit("a|base64: StopLogging", json!({"a": "u3rvcexvz2dpbmc="})));
        let vars = base64_variants(&["ping".to_owned()], true).unwrap_or_default();
        assert_eq!(vars, vec!["cGluZ", "Bpbm", "waW5n"]);
        let eng = base64::engine::general_purpose::STANDARD;
        for pre in ["", "x", "xy", "xyz"] {
            let enc = eng.encode(format!("{pre}ping pong"));
            assert!(hit("a|base64offset|contains: ping", json!({ "a": enc })), "{pre}");
        }
        assert!(!hit("a|base64offset|contains: ping", json!({"a": eng.encode("pang pong")})));
    }

    #[test]
    fn windash_variants() {
        assert!(hit("c|windash|contains: ' -exec'", json!({"c": "x /exec y"})));
        assert!(hit("c|windash|contains: ' -exec'", json!({"c": "x \u{2014}exec y"})));
        assert!(!hit("c|windash|contains: ' -exec'", json!({"c": "x +exec y"})));
        // A dash inside a word is not a flag dash.
        assert_eq!(windash(&["a-b".to_owned()]).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn fieldref_same_event() {
        let ev = json!({"userIdentity": {"arn": "arn:aws:iam::1:user/Bob"},
                        "requestParameters": {"userName": "bob"}});
        assert!(!hit("userIdentity.arn|fieldref: requestParameters.userName", ev.clone()));
        assert!(hit("userIdentity.arn|fieldref|endswith: requestParameters.userName", ev.clone()));
        assert!(!hit("userIdentity.arn|fieldref|endswith|cased: requestParameters.userName", ev));
        let same = json!({"a": "x*", "b": "X*"});
        assert!(hit("a|fieldref: b", same));
        assert!(!hit("a|fieldref: b", json!({"a": "xy", "b": "x*"})));
    }

    #[test]
    fn unsupported_and_bad_modifiers() {
        assert_eq!(cond("a|xyz: 1").err(), Some(ErrorKind::UnsupportedModifier("xyz".into())));
        assert_eq!(cond("a|wide|base64: x").err(), Some(ErrorKind::UnsupportedModifier("wide".into())));
        assert!(matches!(cond("a|re|contains: x"), Err(ErrorKind::Modifier(_))));
        assert!(matches!(cond("a|contains|startswith: x"), Err(ErrorKind::Modifier(_))));
        assert!(matches!(cond("a|base64: 'x*'"), Err(ErrorKind::Modifier(_))));
        assert!(matches!(cond("a: []"), Err(ErrorKind::Invalid { .. })));
    }

    #[test]
    fn expand_placeholders() {
        let v = serde_yaml::Value::String("%admins%@corp".into());
        assert_eq!(FieldCond::compile("u|expand", &v, None).err(), Some(ErrorKind::Placeholder("admins".into())));
        let mut p = HashMap::new();
        p.insert("admins".to_owned(), vec!["alice".to_owned(), "bob".to_owned()]);
        let c = FieldCond::compile("u|expand", &v, Some(&p));
        assert!(c.as_ref().is_ok_and(|c| c.matches(&json!({"u": "BOB@corp"}))));
        assert!(c.is_ok_and(|c| !c.matches(&json!({"u": "eve@corp"}))));
    }

    #[test]
    fn keyword_field_name_empty() {
        assert!(hit("'|all': [foo, bar]", json!({"a": "foo", "b": {"c": ["xbar"]}})));
        assert!(!hit("'|all': [foo, bar]", json!({"a": "foo"})));
    }
}
