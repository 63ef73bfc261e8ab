//! Field-path lookup in a CloudTrail record: one held as a `serde_json::Value`, or any [`Event`]
//! (`query::record::View` reads a row of the events frame in place).

use serde_json::Value;
use std::borrow::Cow;

/// What a rule is matched against: a CloudTrail record, looked up by field path.
pub trait Event {
    /// Calls `f` on every value `path` resolves to (as [`FieldPath::any`] on the record as JSON),
    /// stopping (and returning `true`) as soon as `f` returns `true`.
    fn any<'s>(&'s self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'s>) -> bool) -> bool;

    /// Calls `f` on every string leaf of the record, stopping at the first `true` (keywords).
    fn any_string_leaf(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// A value a field path resolves to: JSON, or a string or boolean a record holds as it is (which
/// compare as the JSON string or boolean would).
#[derive(Debug, Clone, Copy)]
pub enum Leaf<'a> {
    Json(&'a Value),
    Text(&'a str),
    Bool(bool),
}

impl Leaf<'_> {
    pub fn is_null(self) -> bool {
        matches!(self, Leaf::Json(Value::Null))
    }
}

/// [`value_text`] of a leaf.
pub fn leaf_text(v: Leaf<'_>) -> Option<Cow<'_, str>> {
    match v {
        Leaf::Json(v) => value_text(v),
        Leaf::Text(s) => Some(Cow::Borrowed(s)),
        Leaf::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
    }
}

impl Event for Value {
    fn any<'s>(&'s self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'s>) -> bool) -> bool {
        path.any(self, &mut |v| f(Leaf::Json(v)))
    }

    fn any_string_leaf(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        any_string_leaf(self, f)
    }
}

/// A dotted JSON path (`userIdentity.sessionContext.sessionIssuer.arn`), split once at load time.
#[derive(Debug, Clone)]
pub struct FieldPath {
    raw: String,
    segs: Vec<String>,
    /// `rests[i]` = `segs[i..].join(".")`: lets a key that itself contains dots be found.
    rests: Vec<String>,
    /// The ids of `rests[0]` and `segs[0]` among a flat record's keys (see `any_flat_ids`),
    /// resolved on first use.
    flat_ids: std::sync::OnceLock<[Option<u16>; 2]>,
}

/// Paths are equal when they are written alike (the rest derives from that).
impl PartialEq for FieldPath {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for FieldPath {}

impl FieldPath {
    /// Splits `path` on `.`.
    pub fn parse(path: &str) -> Self {
        let segs: Vec<String> = path.split('.').map(str::to_owned).collect();
        let rests = (0..segs.len()).map(|i| segs[i..].join(".")).collect();
        FieldPath { raw: path.to_owned(), segs, rests, flat_ids: std::sync::OnceLock::new() }
    }

    /// The path as written in the rule.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Calls `f` on every value the path resolves to, stopping (and returning `true`) as soon as
    /// `f` returns `true`.
    ///
    /// A step that meets an array tries every element. A path ending on an array yields the array
    /// itself (so it can be compared as JSON text) and then each element.
    pub fn any<'a>(&self, event: &'a Value, f: &mut dyn FnMut(&'a Value) -> bool) -> bool {
        walk(event, &self.segs, &self.rests, f)
    }

    /// [`FieldPath::any`] for a record whose top-level object is looked up by `get` (a key to its
    /// value), which is how a record keeps fields flat under their dotted path: the same values, as
    /// the walk's first step reads the object (the whole path as one key, then the first segment).
    pub fn any_flat<'a>(&self, get: &dyn Fn(&str) -> Option<Leaf<'a>>, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
        self.any_flat_by(&|whole| get(if whole { &self.rests[0] } else { &self.segs[0] }), f)
    }

    /// [`FieldPath::any_flat`] for a record whose keys are numbered: `id_of` gives a key's id (the
    /// path keeps the ids of its two keys from its first call: one numbering of keys for every
    /// record a path is used on), `get` a value by id. Reading a row, a key is then not hashed.
    pub fn any_flat_ids<'a>(
        &self,
        id_of: &dyn Fn(&str) -> Option<u16>,
        get: &dyn Fn(u16) -> Option<Leaf<'a>>,
        f: &mut dyn FnMut(Leaf<'a>) -> bool,
    ) -> bool {
        let ids = self.flat_ids.get_or_init(|| [id_of(&self.rests[0]), id_of(&self.segs[0])]);
        self.any_flat_by(&|whole| ids[usize::from(!whole)].and_then(get), f)
    }

    /// `any_flat` with `key(true)` the value under the whole path as one key, `key(false)` under its
    /// first segment.
    fn any_flat_by<'a>(&self, key: &dyn Fn(bool) -> Option<Leaf<'a>>, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
        if self.segs.len() > 1 {
            if let Some(x) = key(true) {
                if terminal_leaf(x, f) {
                    return true;
                }
            }
        }
        match key(false) {
            Some(Leaf::Json(x)) => walk(x, &self.segs[1..], &self.rests[1..], &mut |v| f(Leaf::Json(v))),
            // A string or boolean has nothing under it.
            Some(x) if self.segs.len() == 1 => f(x),
            _ => false,
        }
    }

    /// The text of the first value the path resolves to (see [`value_text`]); `None` when the
    /// field is missing or null.
    pub fn first_text(&self, event: &Value) -> Option<String> {
        let mut out = None;
        self.any(event, &mut |v| {
            out = value_text(v).map(Cow::into_owned);
            out.is_some()
        });
        out
    }
}

fn walk<'a>(v: &'a Value, segs: &[String], rests: &[String], f: &mut dyn FnMut(&'a Value) -> bool) -> bool {
    let (Some(seg), Some(rest)) = (segs.first(), rests.first()) else {
        return terminal(v, f);
    };
    match v {
        Value::Object(m) => {
            // A literal key with dots ("a.b") wins over nested objects only when it exists.
            if segs.len() > 1 {
                if let Some(x) = m.get(rest.as_str()) {
                    if terminal(x, f) {
                        return true;
                    }
                }
            }
            match m.get(seg.as_str()) {
                Some(x) => walk(x, &segs[1..], &rests[1..], f),
                None => false,
            }
        }
        Value::Array(a) => a.iter().any(|e| walk(e, segs, rests, f)),
        _ => false,
    }
}

fn terminal_leaf<'a>(v: Leaf<'a>, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
    match v {
        Leaf::Json(v) => terminal(v, &mut |x| f(Leaf::Json(x))),
        other => f(other),
    }
}

fn terminal<'a>(v: &'a Value, f: &mut dyn FnMut(&'a Value) -> bool) -> bool {
    if f(v) {
        return true;
    }
    match v {
        Value::Array(a) => a.iter().any(|e| match e {
            // Nested arrays are flattened; their own JSON text is not offered again.
            Value::Array(_) => terminal_elements(e, f),
            _ => f(e),
        }),
        _ => false,
    }
}

fn terminal_elements<'a>(v: &'a Value, f: &mut dyn FnMut(&'a Value) -> bool) -> bool {
    match v {
        Value::Array(a) => a.iter().any(|e| terminal_elements(e, f)),
        _ => f(v),
    }
}

/// Calls `f` on every string leaf of `v` (object keys excluded), stopping at the first `true`.
pub fn any_string_leaf(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|e| any_string_leaf(e, f)),
        Value::Object(m) => m.values().any(|e| any_string_leaf(e, f)),
        _ => false,
    }
}

/// The text a string pattern is compared with: a string as is, a number or boolean as its JSON
/// text, an object or array as compact JSON with sorted keys; `None` for null.
pub fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Null => None,
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Array(_) | Value::Object(_) => {
            let mut out = String::new();
            sorted_json(v, &mut out);
            Some(Cow::Owned(out))
        }
    }
}

/// Compact JSON with object keys sorted, like Python's
/// `json.dumps(v, sort_keys=True, separators=(',', ':'), ensure_ascii=False)`.
/// Sorting is done here rather than relying on serde_json's map order, which flips to insertion
/// order when any crate in the build enables `preserve_order`.
pub fn sorted_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(k, out);
                out.push(':');
                if let Some(x) = m.get(k) {
                    sorted_json(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                sorted_json(x, out);
            }
            out.push(']');
        }
        Value::String(s) => push_json_string(s, out),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

fn push_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collect(path: &str, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        FieldPath::parse(path).any(v, &mut |x| {
            out.push(value_text(x).map(Cow::into_owned).unwrap_or_else(|| "<null>".into()));
            false
        });
        out
    }

    #[test]
    fn nested_path_through_arrays() {
        let ev = json!({"requestParameters": {"containerDefinitions": [
            {"command": ["sh", "-c"]}, {"name": "x"}, {"command": "curl"}]}});
        assert_eq!(
            collect("requestParameters.containerDefinitions.command", &ev),
            vec!["[\"sh\",\"-c\"]", "sh", "-c", "curl"]
        );
        assert!(collect("requestParameters.nope", &ev).is_empty());
    }

    /// `any_flat` over a top-level lookup finds what `any` finds in the object itself, dotted keys,
    /// blobs, arrays and plain strings alike.
    #[test]
    fn flat_lookup_walks_as_the_object() {
        let ev = json!({"userIdentity.type": "Root", "eventName": "X", "readOnly": true,
            "requestParameters": {"a": [{"b": 1}, {"b": "two"}], "c.d": "e", "c": {"d": "f"}},
            "resources": [{"ARN": "arn:1"}, {"ARN": "arn:2"}]});
        let Value::Object(m) = &ev else { unreachable!() };
        let get = |key: &str| m.get(key).map(Leaf::Json);
        for path in [
            "userIdentity.type",
            "userIdentity",
            "eventName",
            "eventName.x",
            "readOnly",
            "requestParameters",
            "requestParameters.a.b",
            "requestParameters.c.d",
            "requestParameters.x",
            "resources.ARN",
            "resources",
            "missing",
            "missing.too",
        ] {
            let p = FieldPath::parse(path);
            let mut flat = Vec::new();
            p.any_flat(&get, &mut |v| {
                flat.push(leaf_text(v).map(Cow::into_owned));
                false
            });
            let mut walked = Vec::new();
            p.any(&ev, &mut |v| {
                walked.push(value_text(v).map(Cow::into_owned));
                false
            });
            assert_eq!(flat, walked, "{path}");
            // The same with the keys numbered (twice: the second call uses the ids kept).
            let keys: Vec<&String> = m.keys().collect();
            let id_of = |key: &str| keys.iter().position(|k| k.as_str() == key).map(|i| i as u16);
            let by_id = |id: u16| keys.get(usize::from(id)).and_then(|k| m.get(k.as_str())).map(Leaf::Json);
            for _ in 0..2 {
                let mut numbered = Vec::new();
                p.any_flat_ids(&id_of, &by_id, &mut |v| {
                    numbered.push(leaf_text(v).map(Cow::into_owned));
                    false
                });
                assert_eq!(numbered, walked, "{path} with numbered keys");
            }
        }
        let found = |path: &str| FieldPath::parse(path).any_flat(&get, &mut |_| true);
        assert!(found("requestParameters.a.b") && found("userIdentity.type") && !found("eventName.x"));
    }

    #[test]
    fn dotted_key_is_found() {
        let ev = json!({"additionalEventData": {"x.y": "a", "x": {"y": "b"}}});
        assert_eq!(collect("additionalEventData.x.y", &ev), vec!["a", "b"]);
    }

    #[test]
    fn sorted_compact_json_like_python() {
        let ev = json!({"b": [1, 1.5, true, null], "a": {"d": "é\"\n\u{1}", "c": {}}});
        let mut s = String::new();
        sorted_json(&ev, &mut s);
        assert_eq!(s, r#"{"a":{"c":{},"d":"é\"\n\u0001"},"b":[1,1.5,true,null]}"#);
    }

    #[test]
    fn scalar_texts() {
        assert_eq!(value_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(value_text(&json!(123)).as_deref(), Some("123"));
        assert_eq!(value_text(&json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(value_text(&json!(null)), None);
    }

    #[test]
    fn string_leaves_only() {
        let ev = json!({"a": ["x", {"b": "y"}], "n": 5, "k": {"key": true}});
        let mut seen = Vec::new();
        any_string_leaf(&ev, &mut |s| {
            seen.push(s.to_owned());
            false
        });
        seen.sort();
        assert_eq!(seen, vec!["x", "y"]);
    }
}
