//! Recognising a file's shape by its content and parsing it into records, all or nothing: a file that
//! is not entirely valid JSON contributes no events and is reported with serde's line and column.
//!
//! Shapes: S3 delivery files `{"Records":[...]}`; a JSON array of events; JSON Lines (or any stream of
//! concatenated JSON objects); Event-history exports `{"Events":[...]}` or JSON Lines whose records
//! carry the event as a JSON string in `CloudTrailEvent` (unpacked later, see `pipeline.rs`).

use serde::Deserialize;

use crate::ingest::fast;
use crate::ingest::record::{Leaves, RawEvent};

/// How the records were laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `{"Records":[...]}` as CloudTrail delivers to S3.
    Records,
    /// `{"Events":[...]}` as `aws cloudtrail lookup-events` prints.
    Events,
    /// A JSON array of events.
    Array,
    /// One JSON object per line (or concatenated objects).
    Lines,
}

/// Why a file gave no records.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all: skipped unless its name says it should have been (see `pipeline.rs`).
    #[error("not JSON (starts with {0:?})")]
    NotJson(String),
    /// Valid JSON, but nothing in it is a CloudTrail record: skipped.
    #[error("JSON, but not CloudTrail records ({0})")]
    NotCloudTrail(&'static str),
    /// Looks like JSON but is broken, or has a wrong shape: the file fails.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<RawEvent<'a>>>,
    #[serde(rename = "Events", borrow)]
    events: Option<Vec<RawEvent<'a>>>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parse `bytes` (already decompressed) into records: in one pass by `fast` when it is sure of the
/// file (delivery files, arrays and JSON Lines of plain records), else by serde.
pub fn parse(bytes: &[u8]) -> Result<(Shape, Vec<Leaves<'_>>), ParseError> {
    let mut records = Vec::new();
    let shape = parse_into(bytes, &mut records)?;
    Ok((shape, records))
}

/// [`parse`] into `records` (emptied first; its space is reused when the fast parser takes the
/// file). On an error, what it holds is meaningless.
pub fn parse_into<'a>(bytes: &'a [u8], records: &mut Vec<Leaves<'a>>) -> Result<Shape, ParseError> {
    let body = body(bytes)?;
    let shape = match fast::parse_into(body, records) {
        Ok(shape) => shape,
        Err(fast::Unsure) => {
            let (shape, parsed) = parse_with_serde(body)?;
            *records = parsed;
            shape
        }
    };
    if !records.is_empty() && !records.iter().any(Leaves::looks_like_cloudtrail) {
        return Err(ParseError::NotCloudTrail("no record has eventTime, eventName or eventSource"));
    }
    Ok(shape)
}

/// An empty vector of records with `records`' space, for another file's text: a worker keeps one
/// from file to file, since a large file's records take tens of MB, and memory freshly mapped is
/// zeroed by the kernel on first touch (4% of a scan of 30 MB files, perf).
pub fn recycle<'b>(mut records: Vec<Leaves<'_>>) -> Vec<Leaves<'b>> {
    records.clear();
    // An empty vector collected in place: the same allocation, as the two types are one layout.
    records.into_iter().map(|_| unreachable!("the vector is empty")).collect()
}

/// The JSON text of `bytes`: from its first `[` or `{` (after a byte-order mark and whitespace), and
/// UTF-8.
pub fn body(bytes: &[u8]) -> Result<&str, ParseError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ParseError::Invalid("only whitespace, no JSON".into()));
    };
    if !matches!(bytes[start], b'[' | b'{') {
        let shown: String = String::from_utf8_lossy(&bytes[start..bytes.len().min(start + 8)]).into_owned();
        return Err(ParseError::NotJson(shown));
    }
    // The whole text is checked for UTF-8 once, up front (JSON text is UTF-8), so the parsers need
    // not check each field they keep: a measured 6% of a scan went to those checks one by one.
    std::str::from_utf8(&bytes[start..]).map_err(|e| not_utf8(&bytes[start..], e.valid_up_to()))
}

/// Parse `body` (UTF-8, from its first `[` or `{`) with serde: the reference `fast` is checked
/// against, and the parser of the files it is not sure of, with serde's errors.
pub fn parse_with_serde(body: &str) -> Result<(Shape, Vec<Leaves<'_>>), ParseError> {
    let invalid = |e: serde_json::Error| ParseError::Invalid(format!("invalid JSON: {e}"));
    let (shape, records) = match body.as_bytes()[0] {
        b'[' => (Shape::Array, serde_json::from_str::<Vec<RawEvent>>(body).map_err(invalid)?),
        _ => {
            let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Envelope>();
            let first = match stream.next() {
                Some(Ok(env)) => env,
                Some(Err(e)) => return Err(invalid(e)),
                None => unreachable!("body starts with '{{'"),
            };
            let single_document = body.as_bytes()[stream.byte_offset()..].iter().all(u8::is_ascii_whitespace);
            match (first.records, first.events) {
                (Some(r), _) if single_document => (Shape::Records, r),
                (None, Some(e)) if single_document => (Shape::Events, e),
                (Some(_), _) | (_, Some(_)) => {
                    return Err(ParseError::Invalid("a Records/Events document followed by more JSON".into()))
                }
                (None, None) => {
                    let records = serde_json::Deserializer::from_str(body)
                        .into_iter::<RawEvent>()
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(invalid)?;
                    (Shape::Lines, records)
                }
            }
        }
    };
    Ok((shape, records.iter().map(Leaves::of).collect()))
}

/// The error for text that is not UTF-8, placed as serde's errors are (line and column, from 1).
fn not_utf8(body: &[u8], valid_up_to: usize) -> ParseError {
    let before = &body[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = valid_up_to - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
    ParseError::Invalid(format!("invalid JSON: invalid unicode (not UTF-8) at line {line} column {column}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(s: &str) -> Result<(Shape, usize), String> {
        parse(s.as_bytes()).map(|(sh, r)| (sh, r.len())).map_err(|e| e.to_string())
    }

    #[test]
    fn recognises_each_shape() {
        assert_eq!(shape_of(r#"{"Records":[{"eventTime":"x"},{"eventTime":"y"}]}"#), Ok((Shape::Records, 2)));
        assert_eq!(shape_of(r#"  [{"eventName":"A"}]"#), Ok((Shape::Array, 1)));
        assert_eq!(shape_of("{\"eventName\":\"A\"}\n\n{\"eventName\":\"B\"}\n"), Ok((Shape::Lines, 2)));
        assert_eq!(shape_of(r#"{"Events":[{"CloudTrailEvent":"{}"}]}"#), Ok((Shape::Events, 1)));
        assert_eq!(shape_of("\u{feff}{\"Records\":[]}"), Ok((Shape::Records, 0)));
        assert_eq!(shape_of("[]"), Ok((Shape::Array, 0)));
    }

    #[test]
    fn a_vector_of_records_is_reused_for_the_next_file() {
        let first = br#"{"Records":[{"eventName":"A"},{"eventName":"B"},{"eventName":"C"}]}"#.to_vec();
        let mut records = Vec::with_capacity(100);
        parse_into(&first, &mut records).expect("delivery file");
        assert_eq!(records.len(), 3);
        let (space, capacity) = (records.as_ptr() as usize, records.capacity());
        let second = br#"[{"eventName":"D"}]"#.to_vec();
        let mut again = recycle(records);
        assert!(again.is_empty());
        assert_eq!((again.as_ptr() as usize, again.capacity()), (space, capacity));
        assert_eq!(parse_into(&second, &mut again).ok(), Some(Shape::Array));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].event_name.map(|n| n.text), Some(r#""D""#));
        // A file the fast parser leaves to serde fills the vector too.
        let events = br#"{"Events":[{"CloudTrailEvent":"{}"},{"CloudTrailEvent":"{}"}]}"#.to_vec();
        let mut again = recycle(again);
        assert_eq!(parse_into(&events, &mut again).ok(), Some(Shape::Events));
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn classifies_bad_input() {
        assert!(matches!(parse(b"name,age\n"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse(br#"{"foo":1}"#), Err(ParseError::NotCloudTrail(_))));
        assert!(matches!(parse(br#"{"Records":[{"eventName":"A"}"#), Err(ParseError::Invalid(_))));
        assert!(matches!(parse(b"[{eventName: 1}]"), Err(ParseError::Invalid(_))));
        assert!(matches!(parse(br#"{"Records":["x"]}"#), Err(ParseError::Invalid(_))));
        assert!(matches!(parse(b"\n  \n"), Err(ParseError::Invalid(_))));
        // Not UTF-8, even in a field no column keeps: placed as serde places its errors.
        let latin1 = parse(b"{\"Records\":[\n{\"eventName\":\"A\",\"x\":\"caf\xe9\"}]}");
        assert!(
            matches!(&latin1, Err(ParseError::Invalid(m)) if m.ends_with("not UTF-8) at line 2 column 26")),
            "{latin1:?}"
        );
        let e = parse(b"{\"eventName\":\"A\"}\n{\"eventName\":\xff}\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
