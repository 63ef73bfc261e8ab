//! `sql`: ad-hoc Polars SQL over a table named `events` with the frame's columns, for the questions
//! we did not think of. A failing query is reported with the columns that exist. Beside Polars'
//! own functions, `json_get(text, '$.path')` reads a field out of a JSON text column
//! (`request_parameters`, `response_elements`, ...).

use std::sync::Arc;

use polars::prelude::*;
use polars::sql::SQLContext;
use polars::sql::{FunctionOptions, FunctionRegistry};

use crate::error::{Error, Result};

/// Plan `query` over `events`. Errors (at planning or, via `explain_error`, at collection) name the
/// available columns. CloudTrail's own field names are accepted for the columns (see `ALIASES`).
pub fn plan(events: LazyFrame, query: &str) -> Result<LazyFrame> {
    let mut ctx = SQLContext::new().with_function_registry(Arc::new(Functions));
    ctx.register("events", events);
    ctx.execute(&rewrite(query)).map_err(|e| explain_error(&e))
}

/// A query's final ORDER BY, taken out of its plan to be done out of core (`query::sort`): the
/// rows to sort, with their sort keys added as columns, how they are ordered, and the answer's
/// columns. Polars' streaming engine sorts by holding every row.
pub struct FinalOrder {
    /// The rows before the sort, each key a column of its own (`keys.columns`).
    pub rows: LazyFrame,
    pub keys: super::sort::SortKeys,
    /// The answer's columns, taken from the sorted rows.
    pub columns: Vec<PlSmallStr>,
}

/// The final ORDER BY of a planned query, when its plan ends with one (Polars SQL plans
/// `SELECT cols ... ORDER BY keys` as a projection of plain columns over a sort), without a LIMIT
/// (Polars keeps the first rows only, in bounded memory) nor anything after it (DISTINCT); `None`
/// for any other plan, which Polars runs as it is.
pub fn final_order(lf: &LazyFrame) -> Option<FinalOrder> {
    let DslPlan::Select { expr, input, .. } = unconverted(&lf.logical_plan) else { return None };
    let columns = expr
        .iter()
        .map(|e| match e {
            Expr::Column(name) => Some(name.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let DslPlan::Sort { input, by_column, slice: None, sort_options } = unconverted(input) else { return None };
    if sort_options.limit.is_some() || by_column.is_empty() {
        return None;
    }
    let names: Vec<PlSmallStr> = (0..by_column.len()).map(|i| format!("__trailscope_sort_key_{i}").into()).collect();
    let added: Vec<Expr> = by_column.iter().zip(&names).map(|(e, name)| e.clone().alias(name.clone())).collect();
    // Only the answer's columns and the keys go through the sort (the events' other columns, null
    // where the query does not name them, took 3x the memory).
    let kept: Vec<Expr> = {
        let mut seen = hashbrown::HashSet::new();
        columns.iter().chain(&names).filter(|n| seen.insert(*n)).map(|n| col(n.clone())).collect()
    };
    let rows = LazyFrame::from((**input).clone())
        .with_optimizations(lf.get_current_optimizations())
        .with_columns(added)
        .select(kept);
    let keys = super::sort::SortKeys {
        columns: names,
        descending: broadcast(&sort_options.descending, by_column.len())?,
        nulls_last: broadcast(&sort_options.nulls_last, by_column.len())?,
    };
    Some(FinalOrder { rows, keys, columns })
}

/// The plan as it was given: Polars wraps a plan it has planned (for its schema, say) in an `IR`
/// node that keeps the original.
fn unconverted(plan: &DslPlan) -> &DslPlan {
    match plan {
        DslPlan::IR { dsl, .. } => unconverted(dsl),
        other => other,
    }
}

/// A sort option given once for all keys, or once per key.
fn broadcast(flags: &[bool], keys: usize) -> Option<Vec<bool>> {
    match flags {
        [one] => Some(vec![*one; keys]),
        many if many.len() == keys => Some(many.to_vec()),
        _ => None,
    }
}

/// The functions trailscope adds to Polars SQL (their names in lower case, as Polars looks them up).
pub const FUNCTIONS: [&str; 1] = ["json_get"];

/// trailscope's SQL functions, for `SQLContext` (which asks it for any name it does not know).
struct Functions;

impl FunctionRegistry for Functions {
    fn register(&mut self, name: &str, _fun: udf::UserDefinedFunction) -> PolarsResult<()> {
        polars_bail!(InvalidOperation: "cannot add the SQL function {name}")
    }

    fn get_udf(&self, name: &str) -> PolarsResult<Option<udf::UserDefinedFunction>> {
        Ok((name == "json_get").then(json_get))
    }

    fn contains(&self, name: &str) -> bool {
        FUNCTIONS.contains(&name)
    }
}

/// `json_get(text, '$.path')`: the value at a JSONPath in JSON text, as text (a string unquoted,
/// anything else as JSON: `900`, `{"a":1}`), null when the text is null, not JSON, or has nothing
/// there. Row by row (the streaming engine runs it batch by batch), with Polars' `json_path_match`.
fn json_get() -> udf::UserDefinedFunction {
    let run = |args: &mut [Column]| -> PolarsResult<Column> {
        polars_ensure!(
            args.len() == 2,
            InvalidOperation: "json_get takes two arguments, a JSON text column and a path ('$.bucketName'); got {}",
            args.len()
        );
        let text = args[0].cast(&DataType::String)?;
        let path = args[1].cast(&DataType::String)?;
        Ok(text.str()?.json_path_match(path.str()?)?.into_column())
    };
    let field = |_: &Schema, fields: &[Field]| -> PolarsResult<Field> {
        let name = fields.first().map_or_else(|| PlSmallStr::from_static("json_get"), |f| f.name().clone());
        Ok(Field::new(name, DataType::String))
    };
    let mut f = udf::UserDefinedFunction::new("json_get".into(), BaseColumnUdf::new(run, field));
    f.options = FunctionOptions::elementwise();
    f
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
            // A string literal, copied as it is.
            let start = i;
            i = literal_end(&chars, i);
            out.extend(&chars[start..i]);
        } else if ch == '"' {
            let end = quoted_end(&chars, i);
            let name: String = chars[i + 1..end].iter().collect();
            match alias(&name) {
                Some(col) => out.push_str(col),
                None => out.extend(&chars[i..(end + 1).min(chars.len())]),
            }
            i = end + 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let start = i;
            i = word_end(&chars, i);
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

/// The string columns `query` can read (what raw files need filled for it), or `None` for every
/// column. An over-approximation, read off the query's words (after `rewrite`, outside string
/// literals): every column it names, by itself or after a table name (`e.event_name`). `None` when
/// it may read a column it does not name: a `*` other than `count(*)` (`select *`, `e.*`, or a
/// product, which is not told apart), a `NATURAL` join, Polars' `COLUMNS(...)`.
pub fn columns_read(query: &str) -> Option<Vec<&'static str>> {
    let q: Vec<char> = rewrite(query).chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    while i < q.len() {
        let ch = q[i];
        if ch == '\'' {
            i = literal_end(&q, i);
        } else if ch == '"' {
            let end = quoted_end(&q, i);
            words.push(q[i + 1..end].iter().collect());
            i = end + 1;
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let start = i;
            i = word_end(&q, i);
            let word: String = q[start..i].iter().collect();
            words.extend(word.split('.').map(str::to_string));
        } else if ch == '*' {
            let before: String = q[..i].iter().rev().filter(|c| !c.is_whitespace()).take(6).collect();
            let after = q[i + 1..].iter().find(|c| !c.is_whitespace());
            // `count(*)`, reversed: "(tnuoc".
            if !(before.eq_ignore_ascii_case("(tnuoc") && after == Some(&')')) {
                return None;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    if words.iter().any(|w| w.eq_ignore_ascii_case("natural") || w.eq_ignore_ascii_case("columns")) {
        return None;
    }
    Some(
        crate::ingest::frame::string_columns()
            .filter(|name| words.iter().any(|w| w.eq_ignore_ascii_case(name)))
            .collect(),
    )
}

/// Past the end of the string literal whose opening quote is at `i` (`''` is a quote inside it).
fn literal_end(chars: &[char], mut i: usize) -> usize {
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
    (i + 1).min(chars.len())
}

/// Where the quoted name whose `"` is at `i` closes (the text's end when it does not).
fn quoted_end(chars: &[char], i: usize) -> usize {
    chars[i + 1..].iter().position(|c| *c == '"').map_or(chars.len(), |p| i + 1 + p)
}

/// The end of the word (letters, digits, `_`, `.`) starting at `i`.
fn word_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
        i += 1;
    }
    i
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
    use crate::ingest::frame::col_name as c;

    /// The columns a query names are read, by their names or CloudTrail's, bare, quoted or after a
    /// table; a `*` other than `count(*)`, a natural join or `COLUMNS` reads every column; words in
    /// string literals name nothing.
    #[test]
    fn columns_read_are_the_columns_a_query_names() {
        let read = |q: &str| {
            columns_read(q).map(|mut v| {
                v.sort_unstable();
                v
            })
        };
        assert_eq!(
            read("select event_name, count(*) n from events group by event_name order by n desc"),
            Some(vec![c::EVENT_NAME])
        );
        assert_eq!(
            read("SELECT eventName, \"userIdentity.arn\", COUNT( * ) FROM events e WHERE e.error_code = 'source_ip' GROUP BY 1, 2"),
            Some({
                let mut v = vec![c::EVENT_NAME, c::ARN, c::ERROR_CODE];
                v.sort_unstable();
                v
            })
        );
        assert_eq!(
            read("select json_get(request_parameters, '$.bucketName') b from events"),
            Some(vec![c::REQUEST_PARAMETERS])
        );
        assert_eq!(
            read("select count(*) from events where event_name = 'it''s user_agent'"),
            Some(vec![c::EVENT_NAME])
        );
        for all in [
            "select * from events",
            "select e.* from events e",
            "select count(*) * 2 from events",
            "select a.event_id from events a natural join events b",
            "select columns('^event.*$') from events",
        ] {
            assert_eq!(read(all), None, "{all}");
        }
    }

    /// `json_get` reads a field out of JSON text (#11: `request_parameters` could not be queried).
    #[test]
    fn json_get_reads_a_path_out_of_json_text() {
        let df = df!(
            "request_parameters" => [Some(r#"{"bucketName":"b1","durationSeconds":900,"f":{"a":[1,2]}}"#), None, Some("not json")]
        )
        .unwrap();
        let mut ctx = SQLContext::new().with_function_registry(Arc::new(Functions));
        ctx.register("events", df.lazy());
        let out = ctx
            .execute(
                "select json_get(request_parameters, '$.bucketName') b, JSON_GET(request_parameters, '$.durationSeconds') d, \
                 json_get(request_parameters, '$.f.a[1]') a from events",
            )
            .unwrap()
            .collect()
            .unwrap();
        let col =
            |n: &str| out.column(n).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(col("b"), [Some("b1".to_string()), None, None]);
        assert_eq!(col("d"), [Some("900".to_string()), None, None]);
        assert_eq!(col("a"), [Some("2".to_string()), None, None]);
        let mut ctx = SQLContext::new().with_function_registry(Arc::new(Functions));
        ctx.register("events", df!("x" => ["{}"]).unwrap().lazy());
        assert!(ctx.execute("select json_get(x) from events").and_then(|lf| lf.collect()).is_err(), "one argument");
    }

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

#[cfg(test)]
mod order_tests {
    use super::*;

    /// A final ORDER BY is taken out with its keys, directions and null placement as Polars SQL
    /// plans them; a LIMIT, a DISTINCT or no ORDER BY leaves the plan to Polars.
    #[test]
    fn the_final_order_by_is_taken_out_of_the_plan() {
        let events = crate::ingest::frame::empty().unwrap().lazy();
        // As `sql` plans it: its schema asked for first (which wraps the plan).
        let order = |query: &str| {
            let mut lf = plan(events.clone(), query).unwrap();
            lf.collect_schema().unwrap();
            final_order(&lf)
        };
        let found = order("select event_name, principal as who from events order by who desc, event_time").unwrap();
        assert_eq!(found.columns, ["event_name", "who"]);
        assert_eq!(found.keys.descending, [true, false]);
        // Postgres' defaults, as Polars SQL: nulls first descending, last ascending.
        assert_eq!(found.keys.nulls_last, [false, true]);
        let mut rows = found.rows;
        let schema = rows.collect_schema().unwrap();
        assert!(found.keys.columns.iter().all(|k| schema.contains(k)), "{schema:?}");
        let nulls = order("select event_name from events order by source_ip nulls first").unwrap();
        assert_eq!((nulls.keys.descending, nulls.keys.nulls_last), (vec![false], vec![false]));
        for query in [
            "select event_name from events order by event_time limit 5",
            "select distinct event_name from events order by event_name",
            "select event_name from events",
        ] {
            assert!(order(query).is_none(), "{query}");
        }
    }
}
