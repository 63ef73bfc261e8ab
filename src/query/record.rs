//! The CloudTrail record a Sigma rule sees, rebuilt from a batch of the events frame: the record's
//! own field names (`eventName`, `userIdentity.sessionContext.sessionIssuer.arn`, ...) for every field
//! trailscope keeps, and `requestParameters`, `responseElements`, `additionalEventData` and
//! `resources` as the JSON they were delivered as. `hunt` (the rules a user gives) and `detect` (the
//! built-in checks, shipped as Sigma rules) read events through it, so a rule sees the same record in
//! both. Only the fields a rule reads are looked at (`needed_fields`), and rules reading fields read
//! them in place from the columns (`View`); the JSON record is rebuilt for the others (`Batch::event`).

use polars::prelude::*;
use serde_json::{Map, Value};

use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::sigma::{Event, FieldPath, Leaf, Rule};

/// The columns of the rebuilt record, read once per batch.
pub struct Batch {
    pub time: Int64Chunked,
    /// Not part of the record: the hit rows' column.
    principal: Texts,
    pub text: Vec<(&'static str, Texts)>,
    flags: Vec<(&'static str, BooleanChunked)>,
    created: Int64Chunked,
}

/// A text column of a batch, read a cell at a time: rules read cells one by one (a field a rule
/// tests, a hit's fields), and `ChunkedArray::get` finds the chunk each time, where a batch's column
/// has one chunk or a few.
#[derive(Clone)]
pub struct Texts {
    name: PlSmallStr,
    /// Each chunk's array and the row it starts at.
    chunks: Vec<(usize, TextArray)>,
}

/// The Arrow array of a text column.
type TextArray = <StringType as PolarsDataType>::Array;

impl Texts {
    pub fn of(column: &StringChunked) -> Texts {
        let mut start = 0;
        let chunks = column
            .downcast_iter()
            .map(|array| {
                start += array.len();
                (start - array.len(), array.clone())
            })
            .collect();
        Texts { name: column.name().clone(), chunks }
    }

    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The text of row `row`; `None` for a null (or a row past the end).
    #[inline]
    pub fn get(&self, row: usize) -> Option<&str> {
        let (start, array) = self.chunks.iter().rev().find(|(start, _)| *start <= row)?;
        let i = row - start;
        if i < array.len() {
            array.get(i)
        } else {
            None
        }
    }
}

/// The record's fields by their column's type, from `frame::CLOUDTRAIL_NAMES`: text (the JSON blobs
/// among them), booleans, and the two times (`eventTime`, `creationDate`). `record`'s bits number
/// the text fields, then the booleans, then the times.
struct Fields {
    text: Vec<(&'static str, &'static str)>,
    flags: Vec<(&'static str, &'static str)>,
}

static FIELDS: std::sync::LazyLock<Fields> = std::sync::LazyLock::new(|| {
    let schema = crate::ingest::frame::schema();
    let of = |dtype: &DataType| {
        crate::ingest::frame::CLOUDTRAIL_NAMES
            .iter()
            .copied()
            .filter(|(_, col)| schema.get(col) == Some(dtype))
            .collect::<Vec<_>>()
    };
    Fields { text: of(&DataType::String), flags: of(&DataType::Boolean) }
});

/// CloudTrail writes `mfaAuthenticated` as the text "true" / "false"; the frame holds a boolean.
const MFA_PATH: &str = "userIdentity.sessionContext.attributes.mfaAuthenticated";
const CREATED_PATH: &str = "userIdentity.sessionContext.attributes.creationDate";

const JSON_FIELDS: [&str; 4] = ["requestParameters", "responseElements", "additionalEventData", "resources"];

impl Batch {
    pub fn new(df: &DataFrame) -> Result<Batch> {
        let ms = |name: &str| -> Result<Int64Chunked> {
            let s = df.column(name).context(name)?.cast(&DataType::Int64).context(name)?;
            Ok(s.i64().context(name)?.clone())
        };
        let text = FIELDS
            .text
            .iter()
            .map(|(path, name)| Ok((*path, Texts::of(df.column(name).context(name)?.str().context(name)?))))
            .collect::<Result<Vec<_>>>()?;
        let flags = FIELDS
            .flags
            .iter()
            .map(|(path, name)| Ok((*path, df.column(name).context(name)?.bool().context(name)?.clone())))
            .collect::<Result<Vec<_>>>()?;
        let principal = Texts::of(df.column(c::PRINCIPAL).context(c::PRINCIPAL)?.str().context(c::PRINCIPAL)?);
        Ok(Batch { time: ms(c::EVENT_TIME)?, principal, text, flags, created: ms(c::SESSION_CREATED)? })
    }

    /// A text column by its frame name (`principal` included).
    pub fn text_column(&self, name: &str) -> Option<&Texts> {
        if name == c::PRINCIPAL {
            return Some(&self.principal);
        }
        self.text.iter().find(|(_, col)| col.name() == name).map(|(_, col)| col)
    }

    /// Row `row` for rules reading the fields of `need`: read in place unless `need` has [`NESTED`].
    pub fn event(&self, row: usize, need: u64) -> RowEvent<'_> {
        if need & NESTED != 0 {
            return RowEvent::Record(self.record(row, need));
        }
        RowEvent::View(View { batch: self, row, need, blobs: Default::default(), times: Default::default() })
    }

    /// The record as CloudTrail wrote it, as far as the frame keeps it: the fields of `need` (bits
    /// as `needed_fields` sets them), which is all a rule reading only those can tell apart.
    ///
    /// Unless `need` has [`NESTED`], the fields sit at the top level under their whole dotted path
    /// (`"userIdentity.sessionContext.sessionIssuer.arn": ...`), which a Sigma field path finds in
    /// one lookup (a key with dots is tried before nested objects: `sigma::FieldPath`), and which
    /// costs one map insert per field instead of one per path segment: rebuilding records was most
    /// of `detect`'s time from a store. A rule that reads an object holding several fields
    /// (`userIdentity` as a whole) sets `NESTED` and gets them nested as CloudTrail writes them.
    pub fn record(&self, row: usize, need: u64) -> Value {
        let mut rec = Map::new();
        let wants = |bit: usize| need & (1 << bit) != 0;
        let nested = need & NESTED != 0;
        let put = |rec: &mut Map<String, Value>, path: &str, value: Value| {
            if nested {
                insert_path(rec, path, value);
            } else {
                rec.insert(path.to_string(), value);
            }
        };
        let (time_bit, created_bit) = time_bits();
        if let Some(t) = self.time.get(row).filter(|_| wants(time_bit)) {
            rec.insert("eventTime".into(), Value::String(cloudtrail_time(t)));
        }
        for (bit, (path, col)) in self.text.iter().enumerate() {
            if !wants(bit) {
                continue;
            }
            let Some(v) = col.get(row) else { continue };
            let value = if JSON_FIELDS.contains(path) { blob(v) } else { Value::String(v.to_string()) };
            put(&mut rec, path, value);
        }
        for (n, (path, col)) in self.flags.iter().enumerate() {
            if !wants(self.text.len() + n) {
                continue;
            }
            match col.get(row) {
                Some(b) if *path == MFA_PATH => put(&mut rec, path, Value::String(b.to_string())),
                Some(b) => put(&mut rec, path, Value::Bool(b)),
                None => {}
            }
        }
        if let Some(t) = self.created.get(row).filter(|_| wants(created_bit)) {
            put(&mut rec, CREATED_PATH, Value::String(cloudtrail_time(t)));
        }
        Value::Object(rec)
    }
}

/// A row to match rules against: the record `Batch::record` would rebuild, read in place where
/// that is exact. A rule reading only fields (no keywords, no object above a field) reads a
/// [`View`]; others get the JSON record.
// One per row on the stack; boxing the view would allocate per row.
#[allow(clippy::large_enum_variant)]
pub enum RowEvent<'b> {
    View(View<'b>),
    Record(Value),
}

impl Event for RowEvent<'_> {
    fn any<'s>(&'s self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'s>) -> bool) -> bool {
        match self {
            RowEvent::View(v) => v.any(path, f),
            RowEvent::Record(r) => r.any(path, f),
        }
    }

    fn any_string_leaf(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        match self {
            RowEvent::View(v) => v.any_string_leaf(f),
            RowEvent::Record(r) => r.any_string_leaf(f),
        }
    }
}

/// One row of a batch seen as the flat record of `need`'s fields (see `Batch::record`): each
/// field under its whole dotted path, texts borrowed from the columns; a JSON blob is parsed when
/// a rule first reads it, once per row.
pub struct View<'b> {
    batch: &'b Batch,
    row: usize,
    need: u64,
    blobs: [std::cell::OnceCell<Value>; JSON_FIELDS.len()],
    times: [std::cell::OnceCell<Option<String>>; 2],
}

/// Where a flat record's key is read from.
#[derive(Clone, Copy)]
enum Slot {
    Text(usize),
    Blob(usize, usize),
    Flag(usize),
    Time(usize),
}

/// The flat record's keys (field paths), numbered: each key's id, and by id its bit of `need` and
/// where it is read from.
struct Slots {
    ids: hashbrown::HashMap<&'static str, u16>,
    slots: Vec<(usize, Slot)>,
}

static SLOTS: std::sync::LazyLock<Slots> = std::sync::LazyLock::new(|| {
    let mut keys: Vec<(&'static str, (usize, Slot))> = Vec::new();
    for (bit, (path, _)) in FIELDS.text.iter().enumerate() {
        let slot = match JSON_FIELDS.iter().position(|j| j == path) {
            Some(j) => Slot::Blob(bit, j),
            None => Slot::Text(bit),
        };
        keys.push((*path, (bit, slot)));
    }
    for (n, (path, _)) in FIELDS.flags.iter().enumerate() {
        keys.push((*path, (FIELDS.text.len() + n, Slot::Flag(n))));
    }
    let (time_bit, created_bit) = time_bits();
    keys.push(("eventTime", (time_bit, Slot::Time(0))));
    keys.push((CREATED_PATH, (created_bit, Slot::Time(1))));
    let ids = keys.iter().enumerate().map(|(id, (key, _))| (*key, id as u16)).collect();
    Slots { ids, slots: keys.into_iter().map(|(_, slot)| slot).collect() }
});

/// The id of a flat record's key.
fn slot_id(key: &str) -> Option<u16> {
    SLOTS.ids.get(key).copied()
}

impl<'b> View<'b> {
    /// The value of the flat record's key of id `id` (see `slot_id`), if the record has it.
    fn get(&self, id: u16) -> Option<Leaf<'_>> {
        let &(bit, slot) = SLOTS.slots.get(usize::from(id))?;
        if self.need & (1 << bit) == 0 {
            return None;
        }
        let b = self.batch;
        match slot {
            Slot::Text(i) => b.text[i].1.get(self.row).map(Leaf::Text),
            Slot::Blob(i, j) => {
                let text = b.text[i].1.get(self.row)?;
                Some(Leaf::Json(self.blobs[j].get_or_init(|| blob(text))))
            }
            Slot::Flag(n) => {
                let (path, col) = &b.flags[n];
                col.get(self.row).map(|v| match *path == MFA_PATH {
                    true => Leaf::Text(if v { "true" } else { "false" }),
                    false => Leaf::Bool(v),
                })
            }
            Slot::Time(t) => {
                let col = if t == 0 { &b.time } else { &b.created };
                let text = self.times[t].get_or_init(|| col.get(self.row).map(cloudtrail_time));
                text.as_deref().map(Leaf::Text)
            }
        }
    }
}

impl Event for View<'_> {
    fn any<'s>(&'s self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'s>) -> bool) -> bool {
        path.any_flat_ids(&slot_id, &|id| self.get(id), f)
    }

    fn any_string_leaf(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        (0..SLOTS.slots.len() as u16).any(|id| match self.get(id) {
            Some(Leaf::Text(s)) => f(s),
            Some(Leaf::Json(v)) => crate::sigma::any_string_leaf(v, f),
            _ => false,
        })
    }
}

/// A JSON blob as the record holds it: parsed, or its text when it does not parse.
fn blob(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The bits of `record`'s `need` for the two times, after one per text and boolean field.
fn time_bits() -> (usize, usize) {
    let time = FIELDS.text.len() + FIELDS.flags.len();
    (time, time + 1)
}

/// Every record field (the u64 holds them: 37 today), nested.
pub const ALL_FIELDS: u64 = u64::MAX;

/// The bit of `needed_fields` that asks for the fields nested as CloudTrail writes them (see
/// `Batch::record`): set for a rule reading an object above a field (`userIdentity`), or keywords.
pub const NESTED: u64 = 1 << 63;

/// The record fields a rule reads, as `record`'s bits: an entry is needed when the rule's path is it,
/// lies under it (`requestParameters.x`) or above it (`userIdentity` as a whole). Keywords read all.
pub fn needed_fields(rule: &Rule) -> u64 {
    if rule.uses_keywords() {
        return ALL_FIELDS;
    }
    let entries = FIELDS.text.iter().chain(&FIELDS.flags).map(|(p, _)| *p).chain(["eventTime", CREATED_PATH]);
    let related = |a: &str, b: &str| {
        a == b
            || a.strip_prefix(b).is_some_and(|r| r.starts_with('.'))
            || b.strip_prefix(a).is_some_and(|r| r.starts_with('.'))
    };
    let fields = rule.fields();
    let mut mask = 0;
    for (bit, entry) in entries.enumerate() {
        if fields.iter().any(|f| related(f, entry)) {
            mask |= 1 << bit;
        }
        if fields.iter().any(|f| entry.strip_prefix(f).is_some_and(|r| r.starts_with('.'))) {
            mask |= NESTED;
        }
    }
    mask
}

/// `2024-01-31T12:00:00Z` as CloudTrail writes times (milliseconds only when there are some).
fn cloudtrail_time(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) if ms % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

fn insert_path(rec: &mut Map<String, Value>, path: &str, value: Value) {
    let mut node = rec;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_string(), value);
            return;
        }
        let next = node.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        node = m;
    }
}

/// The frame columns holding the record fields of `need` (bits as `needed_fields` sets them), for
/// reading only those from raw files (`ReadOptions::columns`); `None` when every field is needed.
pub fn columns_of(need: u64) -> Option<Vec<&'static str>> {
    if need == ALL_FIELDS {
        return None;
    }
    let (time_bit, created_bit) = time_bits();
    let mut names: Vec<&'static str> = FIELDS
        .text
        .iter()
        .chain(&FIELDS.flags)
        .enumerate()
        .filter(|(bit, _)| need & (1 << bit) != 0)
        .map(|(_, (_, name))| *name)
        .collect();
    for (bit, name) in [(time_bit, c::EVENT_TIME), (created_bit, c::SESSION_CREATED)] {
        if need & (1 << bit) != 0 {
            names.push(name);
        }
    }
    Some(names)
}

/// The frame columns the record is rebuilt from (and `principal`, which is not part of it).
pub fn columns_read() -> Vec<Expr> {
    let mut names: Vec<&str> = FIELDS.text.iter().chain(&FIELDS.flags).map(|(_, n)| *n).collect();
    names.extend([c::EVENT_TIME, c::SESSION_CREATED, c::PRINCIPAL]);
    names.into_iter().map(col).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell reads as `ChunkedArray::get` reads it, whichever chunk holds it (empty chunks
    /// included), nulls too, and a row past the end is `None`.
    #[test]
    fn texts_read_cells_across_chunks() {
        let mut column =
            StringChunked::new("c".into(), [Some("a"), None, Some("arn:aws:iam::123456789012:user/alice")]);
        column.append(&StringChunked::new("c".into(), Vec::<Option<&str>>::new())).unwrap();
        column.append(&StringChunked::new("c".into(), [None, Some("")])).unwrap();
        column.append(&StringChunked::new("c".into(), [Some("z")])).unwrap();
        assert_eq!(column.chunks().len(), 3, "Polars drops the empty chunk");
        let mut texts = Texts::of(&column);
        let want: Vec<Option<&str>> = column.iter().collect();
        fn read(texts: &Texts, rows: usize) -> Vec<Option<&str>> {
            (0..=rows).map(|row| texts.get(row)).collect()
        }
        assert_eq!(read(&texts, column.len())[..column.len()], want);
        assert_eq!(read(&texts, column.len())[column.len()], None);
        assert_eq!(texts.name(), "c");
        // Empty arrays where chunks start and at the end read the same.
        let empty = TextArray::new_empty(ArrowDataType::Utf8View);
        texts.chunks.insert(1, (3, empty.clone()));
        texts.chunks.insert(0, (0, empty.clone()));
        texts.chunks.push((column.len(), empty));
        assert_eq!(read(&texts, column.len())[..column.len()], want);
        assert_eq!(read(&texts, column.len())[column.len()], None);
    }
}
