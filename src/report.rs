//! Writing results: an aligned text table for people, JSON for scripts. Data goes to the writer given
//! (stdout or `-o FILE`); nothing here prints progress or warnings.

use std::io::Write;

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::filter::format_ms;

/// One cell as text: timestamps as RFC 3339 with `Z`, nulls empty.
pub fn cell(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _) => format_ms(to_ms(*t, *unit)),
        AnyValue::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(*d + 719_163)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        other => {
            let s = other.to_string();
            s.trim_matches('"').to_string()
        }
    }
}

/// A cell as a JSON value (numbers and booleans keep their type).
pub fn json_cell(v: &AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        AnyValue::Null => J::Null,
        AnyValue::Boolean(b) => J::Bool(*b),
        AnyValue::Int8(_) | AnyValue::Int16(_) | AnyValue::Int32(_) | AnyValue::Int64(_) => {
            J::from(v.extract::<i64>().unwrap_or_default())
        }
        AnyValue::UInt8(_) | AnyValue::UInt16(_) | AnyValue::UInt32(_) | AnyValue::UInt64(_) => {
            J::from(v.extract::<u64>().unwrap_or_default())
        }
        AnyValue::Float32(_) | AnyValue::Float64(_) => {
            serde_json::Number::from_f64(v.extract::<f64>().unwrap_or_default()).map_or(J::Null, J::Number)
        }
        AnyValue::List(s) => J::Array(s.iter().map(|x| json_cell(&x)).collect()),
        _ => J::String(cell(v)),
    }
}

fn to_ms(t: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Nanoseconds => t.div_euclid(1_000_000),
        TimeUnit::Microseconds => t.div_euclid(1_000),
        TimeUnit::Milliseconds => t,
    }
}

/// The rows of `df` as JSON objects with the column names as keys.
pub fn rows_json(df: &DataFrame) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let cols = df.columns();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut obj = serde_json::Map::new();
        for c in cols {
            let v = c.get(i).context("reading a cell")?;
            obj.insert(c.name().to_string(), json_cell(&v));
        }
        out.push(obj);
    }
    Ok(out)
}

/// An aligned text table; long cells are cut to `max_width` characters.
pub fn write_table(w: &mut dyn Write, df: &DataFrame, max_width: usize) -> Result<()> {
    let cols = df.columns();
    let mut grid: Vec<Vec<String>> = vec![cols.iter().map(|c| c.name().to_string()).collect()];
    for i in 0..df.height() {
        let mut row = Vec::with_capacity(cols.len());
        for c in cols {
            let mut s = cell(&c.get(i).context("reading a cell")?).replace(['\n', '\t'], " ");
            if s.chars().count() > max_width {
                s = s.chars().take(max_width.saturating_sub(1)).collect::<String>() + "…";
            }
            row.push(s);
        }
        grid.push(row);
    }
    let widths: Vec<usize> =
        (0..cols.len()).map(|j| grid.iter().map(|r| r[j].chars().count()).max().unwrap_or(0)).collect();
    for (n, row) in grid.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        writeln!(w, "{}", line.join("  ").trim_end()).map_err(|e| crate::error::Error::io("<output>", e))?;
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            writeln!(w, "{}", rule.join("  ")).map_err(|e| crate::error::Error::io("<output>", e))?;
        }
    }
    Ok(())
}
