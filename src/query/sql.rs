//! `sql`: ad-hoc Polars SQL over a table named `events` with the frame's columns, for the questions
//! we did not think of. A failing query is reported with the columns that exist.

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};

/// Plan `query` over `events`. Errors (at planning or, via `explain_error`, at collection) name the
/// available columns. CloudTrail's own field names are accepted for the columns (see `ALIASES`).
pub fn plan(events: LazyFrame, query: &str) -> Result<LazyFrame> {
    let mut ctx = SQLContext::new();
    ctx.register("events", events);
    ctx.execute(&rewrite(query)).map_err(|e| explain_error(&e))
}

/// CloudTrail's field names (as in the records and in Sigma rules) and the columns that hold them;
/// dotted names may be written bare (`userIdentity.arn`) or quoted (`"userIdentity.arn"`).
pub use crate::ingest::frame::CLOUDTRAIL_NAMES as ALIASES;

/// The query with CloudTrail names turned into columns, and `sum(<number>)` into
/// `(<number> * count(*))` (Polars SQL sums a literal once, not per row: `sum(1)` gave 1). String
/// literals are left alone.
pub fn rewrite(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let chars: Vec<char> = query.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\'' {
            // A string literal, '' escaping a quote, copied as it is.
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
        } else if ch == '"' {
            let end = chars[i + 1..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + 1 + p);
            let name: String = chars[i + 1..end].iter().collect();
            match alias(&name) {
                Some(col) => out.push_str(col),
                None => out.extend(&chars[i..(end + 1).min(chars.len())]),
            }
            i = end + 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.eq_ignore_ascii_case("sum") {
                if let Some((n, next)) = summed_number(&chars, i) {
                    out.push_str(&format!("({n} * count(*))"));
                    i = next;
                    continue;
                }
            }
            match alias(&word) {
                Some(col) => out.push_str(col),
                None => out.push_str(&word),
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

fn alias(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, col)| *col)
}

/// `( <number> )` at `i` (spaces allowed): the number and the index after the parenthesis.
fn summed_number(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    let skip = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    skip(&mut i);
    if chars.get(i) != Some(&'(') {
        return None;
    }
    i += 1;
    skip(&mut i);
    let start = i;
    while chars.get(i).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
        i += 1;
    }
    let n: String = chars[start..i].iter().collect();
    skip(&mut i);
    (chars.get(i) == Some(&')') && !n.is_empty() && n.parse::<f64>().is_ok()).then(|| (n, i + 1))
}

/// A query error with the list of columns of `events`, once (Polars' own "valid columns" list is cut).
pub fn explain_error(e: &PolarsError) -> Error {
    let schema = crate::ingest::frame::schema();
    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    let text = e.to_string();
    let text = text.split("; valid columns:").next().unwrap_or(&text).trim_end();
    Error::Usage(format!(
        "SQL error: {text}\ntable `events` has columns: {}\n(CloudTrail's names work too: eventName, userIdentity.arn, ...)",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudtrail_names_and_literal_sums_are_rewritten_outside_strings() {
        assert_eq!(
            rewrite(
                "select eventName, \"userIdentity.arn\", sum(1) n from events where userIdentity.arn like 'eventName%'"
            ),
            "select event_name, arn, (1 * count(*)) n from events where arn like 'eventName%'"
        );
        assert_eq!(rewrite("select SUM( 2.5 ) from events"), "select (2.5 * count(*)) from events");
        assert_eq!(
            rewrite("select sum(n) from t where x = 'it''s sum(1)'"),
            "select sum(n) from t where x = 'it''s sum(1)'"
        );
    }
}
