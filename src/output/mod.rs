//! Writing results. One writer per output format: an aligned text table for people; CSV, JSON (an
//! array of row objects), JSON Lines and Parquet for tools; Timesketch's import format for timelines.
//! Timestamps are RFC 3339 with `Z`; keys are the snake_case column names. Data goes to the writer
//! given (stdout or `-o FILE`); nothing here prints progress or warnings.

use std::io::Write;
use std::path::Path;

use clap::ValueEnum;
use polars::prelude::*;

use crate::error::{Error, PolarsContext, Result};
use crate::time::{format_ms_in, Zone};

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
    Parquet,
    /// Timesketch import: JSON Lines (CSV when -o ends in .csv) with message, datetime, timestamp_desc.
    Timesketch,
}

fn io_err(e: std::io::Error) -> Error {
    Error::io("<output>", e)
}

pub mod log;

/// One cell as text: timestamps as RFC 3339 with `Z`, nulls empty.
pub fn cell(v: &AnyValue<'_>) -> String {
    cell_in(v, Zone::Utc)
}

/// One cell as text for a person: timestamps as RFC 3339 in `zone` (`--tz`, `--localtime`).
pub fn cell_in(v: &AnyValue<'_>, zone: Zone) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        AnyValue::Datetime(t, unit, _) | AnyValue::DatetimeOwned(t, unit, _) => format_ms_in(to_ms(*t, *unit), zone),
        AnyValue::Date(d) => {
            chrono::NaiveDate::from_num_days_from_ce_opt(*d + 719_163).map(|d| d.to_string()).unwrap_or_default()
        }
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

/// The cells of one column as JSON values (see `json_cell`), read in one pass over the column.
fn column_json(c: &Column) -> Result<Vec<serde_json::Value>> {
    let s = c.as_materialized_series().rechunk();
    // One chunk now, which `Series::iter` needs.
    Ok(s.iter().map(|v| json_cell(&v)).collect())
}

/// The rows of `df` as JSON objects with the column names as keys.
pub fn rows_json(df: &DataFrame) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let cols = df.columns();
    let mut cells = cols.iter().map(|c| column_json(c).map(Vec::into_iter)).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(df.height());
    for _ in 0..df.height() {
        let mut obj = serde_json::Map::new();
        for (c, values) in cols.iter().zip(cells.iter_mut()) {
            obj.insert(c.name().to_string(), values.next().unwrap_or(serde_json::Value::Null));
        }
        out.push(obj);
    }
    Ok(out)
}

/// An aligned text table; long cells are cut to `max_width` characters. Control characters in
/// cells are written as visible escapes (`\x1b`), see [`crate::fs::printable`].
pub fn write_table(w: &mut dyn Write, df: &DataFrame, max_width: usize) -> Result<()> {
    write_table_within(w, df, max_width, None)
}

/// `write_table`, its lines fitted into `total` characters when given: the widest columns give up
/// width first (down to their title's width, or 8), their cells cut with an ellipsis.
pub fn write_table_within(w: &mut dyn Write, df: &DataFrame, max_width: usize, total: Option<usize>) -> Result<()> {
    write_table_in(w, df, max_width, total, Zone::Utc)
}

/// `write_table_within`, times shown in `zone`.
pub fn write_table_in(
    w: &mut dyn Write,
    df: &DataFrame,
    max_width: usize,
    total: Option<usize>,
    zone: Zone,
) -> Result<()> {
    let mut table = Table::new(df, max_width, total, zone);
    table.add(w, df)?;
    table.finish(w)
}

/// Rows a table holds before it is laid out: an answer with more is written as it comes, its
/// column widths those of its first `TABLE_HELD_ROWS` rows (text wider than those is cut to them
/// in a fitted table; numbers, and every cell under `--wide`, overflow their column), so that a
/// table of millions of events is never held.
pub const TABLE_HELD_ROWS: usize = 10_000;

/// The widest a table's cell is written (longer text is cut, with "…"), whatever the layout.
pub const TABLE_CELL_CHARS: usize = 60;

/// An aligned text table written a frame at a time (`write_table_in` for a whole frame): rows are
/// held until the answer ends or `TABLE_HELD_ROWS` of them came, then laid out (the widths fitted
/// into `total` characters when given) and written, and every later row is written in that layout.
pub struct Table {
    titles: Vec<String>,
    /// Per column: numbers, which a fitted table never cuts (a later row's wider number overflows).
    numeric: Vec<bool>,
    max_width: usize,
    total: Option<usize>,
    zone: Zone,
    held: Vec<Vec<String>>,
    /// Set once laid out.
    shape: Option<TableShape>,
    /// A section's name, shown above it with its count of rows (`with_title`), and the rows so far.
    title: Option<String>,
    rows: u64,
}

/// A table's layout: each shown column's width, and how many columns (from the right) are left out.
struct TableShape {
    widths: Vec<usize>,
    hidden: usize,
}

impl Table {
    /// A table of `like`'s columns (its rows are not read).
    pub fn new(like: &DataFrame, max_width: usize, total: Option<usize>, zone: Zone) -> Table {
        let titles = like.columns().iter().map(|c| c.name().to_string()).collect();
        let numeric = like.columns().iter().map(|c| c.dtype().is_primitive_numeric()).collect();
        Table { titles, numeric, max_width, total, zone, held: Vec::new(), shape: None, title: None, rows: 0 }
    }

    /// The table of a section among several: `name (N rows)` above it, or, when it is laid out
    /// before its end (`TABLE_HELD_ROWS`), `name` above it and `(N rows)` below.
    pub fn with_title(mut self, name: &str) -> Table {
        self.title = Some(name.replace('_', " "));
        self
    }

    /// Add the rows of `df` (the table's columns), writing what can be written.
    pub fn add(&mut self, w: &mut dyn Write, df: &DataFrame) -> Result<()> {
        let cols = df.columns();
        self.rows += df.height() as u64;
        for i in 0..df.height() {
            let mut row = Vec::with_capacity(cols.len());
            for c in cols {
                // Whitespace that would break the grid becomes a space; every other control
                // character (ANSI/OSC escapes in a log field) is shown escaped, never sent to the
                // terminal (#13).
                let s = cell_in(&c.get(i).context("reading a cell")?, self.zone).replace(['\n', '\t', '\r'], " ");
                let mut s = crate::fs::printable(&s).into_owned();
                if s.chars().count() > self.max_width {
                    s = s.chars().take(self.max_width.saturating_sub(1)).collect::<String>() + "…";
                }
                row.push(s);
            }
            match &self.shape {
                Some(shape) => self.write_row(w, shape, row)?,
                None => {
                    self.held.push(row);
                    if self.held.len() >= TABLE_HELD_ROWS {
                        self.lay_out(w, false)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Lay the table out from its titles and the rows held, and write them.
    fn lay_out(&mut self, w: &mut dyn Write, complete: bool) -> Result<()> {
        match &self.title {
            Some(title) if complete => writeln!(w, "{title} ({} rows)", self.rows).map_err(io_err)?,
            Some(title) => writeln!(w, "{title}").map_err(io_err)?,
            None => {}
        }
        let grid = || std::iter::once(&self.titles).chain(&self.held);
        let mut widths: Vec<usize> =
            (0..self.titles.len()).map(|j| grid().map(|r| r[j].chars().count()).max().unwrap_or(0)).collect();
        let mut hidden = 0;
        let mut titles = self.titles.clone();
        if let Some(total) = self.total {
            fit_widths(&mut widths, total);
            // Columns that cannot fit even narrowed are left out, from the right, and counted below.
            let line = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
            while widths.len() > 1 && line(&widths) > total {
                widths.pop();
                hidden += 1;
            }
            titles.truncate(widths.len());
            for (s, w) in titles.iter_mut().zip(&widths) {
                if s.chars().count() > *w {
                    *s = s.chars().take(w.saturating_sub(1)).collect::<String>() + "…";
                }
            }
        }
        write_line(w, &titles, &widths)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(w, "{}", rule.join("  ")).map_err(io_err)?;
        let shape = TableShape { widths, hidden };
        for row in std::mem::take(&mut self.held) {
            self.write_row(w, &shape, row)?;
        }
        self.shape = Some(shape);
        Ok(())
    }

    /// Write a row in the table's layout: fitted, its cells are cut to their column's width (an
    /// ARN from its start: it says who at its end; never a number) and the columns left out dropped.
    fn write_row(&self, w: &mut dyn Write, shape: &TableShape, mut row: Vec<String>) -> Result<()> {
        if self.total.is_some() {
            row.truncate(shape.widths.len());
            for ((s, w), numeric) in row.iter_mut().zip(&shape.widths).zip(&self.numeric) {
                let n = s.chars().count();
                if n > *w && !numeric {
                    *s = if s.starts_with("arn:") {
                        "…".to_string() + &s.chars().skip(n - w.saturating_sub(1)).collect::<String>()
                    } else {
                        s.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
                    };
                }
            }
        }
        write_line(w, &row, &shape.widths)
    }

    /// Write what is held, and the note naming the columns left out.
    pub fn finish(mut self, w: &mut dyn Write) -> Result<()> {
        let streamed = self.shape.is_some();
        if !streamed {
            self.lay_out(w, true)?;
        }
        let hidden = self.shape.as_ref().map_or(0, |s| s.hidden);
        if hidden > 0 {
            let names = self.titles[self.titles.len() - hidden..].join(", ");
            let note = format!("({hidden} more columns: {names}; --wide or --columns shows them)");
            let note = if note.chars().count() > self.total.unwrap_or(usize::MAX) {
                format!("({hidden} more columns: --wide or --columns shows them)")
            } else {
                note
            };
            writeln!(w, "{note}").map_err(io_err)?;
        }
        if streamed && self.title.is_some() {
            writeln!(w, "({} rows)", self.rows).map_err(io_err)?;
        }
        Ok(())
    }
}

/// One line of a table: each cell padded to its column's width (a wider one overflows it), two
/// spaces between.
fn write_line(w: &mut dyn Write, row: &[String], widths: &[usize]) -> Result<()> {
    let line: Vec<String> = row.iter().zip(widths).map(|(s, w)| format!("{s:<w$}")).collect();
    writeln!(w, "{}", line.join("  ").trim_end()).map_err(io_err)
}

/// Narrow `widths` (two spaces between columns) until the line fits `total`, the widest first, none
/// below 20 characters (or its own width, if less): a table keeps fewer readable columns rather than
/// many unreadable ones (the caller then leaves out what still does not fit).
fn fit_widths(widths: &mut [usize], total: usize) {
    const READABLE: usize = 20;
    let floor: Vec<usize> = widths.iter().map(|w| (*w).min(READABLE)).collect();
    let line = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while line(widths) > total {
        let Some((j, _)) = widths.iter().enumerate().filter(|(j, w)| **w > floor[*j]).max_by_key(|(_, w)| **w) else {
            return;
        };
        widths[j] -= 1;
    }
}

/// The width tables are fitted to: `COLUMNS` when set, else the terminal's when stdout is one;
/// `None` (no fitting) for a file or a pipe.
pub fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0) {
        return Some(n);
    }
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; the fd is stdout's.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// A single row shown as `name  value` lines (summaries read better vertically).
pub fn write_vertical(w: &mut dyn Write, df: &DataFrame) -> Result<()> {
    write_vertical_in(w, df, Zone::Utc)
}

/// `write_vertical`, times shown in `zone`.
pub fn write_vertical_in(w: &mut dyn Write, df: &DataFrame, zone: Zone) -> Result<()> {
    let width = df.columns().iter().map(|c| c.name().len()).max().unwrap_or(0);
    for c in df.columns() {
        let v = if df.height() > 0 { cell_in(&c.get(0).context("reading a cell")?, zone) } else { String::new() };
        let v = crate::fs::printable(&v);
        writeln!(w, "{:<width$}  {v}", c.name().as_str()).map_err(io_err)?;
    }
    Ok(())
}

/// A text cell made inert for spreadsheets (#13, OWASP "CSV injection"): text starting with `=`, `+`,
/// `-`, `@`, a tab or a CR would be read as a formula (`=HYPERLINK(...)`), so it gets a leading `'`.
/// Only text is touched: numbers, booleans and times are written as they are.
pub fn neutralize_formula(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One cell of a CSV row: text neutralized (see [`neutralize_formula`]), then quoted as needed.
fn csv_cell(v: &AnyValue<'_>) -> String {
    let s = cell(v);
    match v {
        AnyValue::String(_) | AnyValue::StringOwned(_) => csv_field(&neutralize_formula(&s)),
        _ => csv_field(&s),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// RFC 4180 CSV with a header row; text cells are neutralized against formula injection.
pub fn write_csv(w: &mut dyn Write, df: &DataFrame) -> Result<()> {
    let header: Vec<String> = df.columns().iter().map(|c| csv_field(c.name())).collect();
    writeln!(w, "{}", header.join(",")).map_err(io_err)?;
    write_csv_rows(w, df)
}

/// The rows of `df` as CSV, without a header.
fn write_csv_rows(w: &mut dyn Write, df: &DataFrame) -> Result<()> {
    let cols = df.columns();
    for i in 0..df.height() {
        let mut fields = Vec::with_capacity(cols.len());
        for c in cols {
            fields.push(csv_cell(&c.get(i).context("reading a cell")?));
        }
        writeln!(w, "{}", fields.join(",")).map_err(io_err)?;
    }
    Ok(())
}

pub fn write_json(w: &mut dyn Write, df: &DataFrame) -> Result<()> {
    let rows = write_json_rows(w, df, Layout::Pretty, 0)?;
    close_json(w, rows)
}

pub fn write_jsonl(w: &mut dyn Write, df: &DataFrame) -> Result<()> {
    write_json_rows(w, df, Layout::Line, 0).map(|_| ())
}

/// How `write_json_rows` lays out a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// JSON Lines: `{"key":value,...}` and a newline.
    Line,
    /// An element of a JSON array as serde_json's pretty printer writes it, two spaces a level,
    /// preceded by the array's `[` (the first row) or the comma after the previous one.
    Pretty,
}

/// Each row of `df` as `rows_json`'s object would serialize, written directly: no map per row, the
/// keys escaped once, text cells escaped straight from their column. `before` rows of the same
/// array were written already (`Layout::Pretty`); returns the count with these.
fn write_json_rows(w: &mut dyn Write, df: &DataFrame, layout: Layout, before: u64) -> Result<u64> {
    let keys = df.columns().iter().map(|c| serde_json::to_vec(c.name().as_str())).collect::<Result<Vec<_>, _>>();
    let keys = keys.map_err(json_err)?;
    let columns: Vec<Series> = df.columns().iter().map(|c| c.as_materialized_series().rechunk()).collect();
    let mut cells = columns.iter().map(JsonCells::of).collect::<Result<Vec<_>>>()?;
    let (open, between, colon, close): (&[u8], &[u8], &[u8], &[u8]) = match layout {
        Layout::Line => (b"{", b",", b":", b"}\n"),
        Layout::Pretty if keys.is_empty() => (b"  {", b"", b"", b"}"),
        Layout::Pretty => (b"  {\n    ", b",\n    ", b": ", b"\n  }"),
    };
    let mut line = Vec::with_capacity(512);
    for row in 0..df.height() as u64 {
        line.clear();
        if layout == Layout::Pretty {
            line.extend_from_slice(if before + row == 0 { b"[\n" } else { b",\n" });
        }
        line.extend_from_slice(open);
        for (i, (key, values)) in keys.iter().zip(cells.iter_mut()).enumerate() {
            if i > 0 {
                line.extend_from_slice(between);
            }
            line.extend_from_slice(key);
            line.extend_from_slice(colon);
            values.write_next(&mut line, layout)?;
        }
        line.extend_from_slice(close);
        w.write_all(&line).map_err(io_err)?;
    }
    Ok(before + df.height() as u64)
}

/// The end of a JSON array of `rows` rows that `write_json_rows` wrote (`Layout::Pretty`), or the
/// empty array.
fn close_json(w: &mut dyn Write, rows: u64) -> Result<()> {
    w.write_all(if rows == 0 { b"[]\n" } else { b"\n]\n" }).map_err(io_err)
}

/// The cells of one column for `write_jsonl`, each written as `json_cell` would serialize it: text
/// straight from the column (most cells), anything else through `json_cell`.
enum JsonCells<'a> {
    Text(Box<dyn Iterator<Item = Option<&'a str>> + 'a>),
    /// Timestamps, in milliseconds: written as `json_cell` writes them (RFC 3339 in UTC), without a
    /// string per cell.
    Times(std::vec::IntoIter<Option<i64>>),
    Values(std::vec::IntoIter<serde_json::Value>),
}

impl<'a> JsonCells<'a> {
    fn of(s: &'a Series) -> Result<JsonCells<'a>> {
        Ok(match s.dtype() {
            DataType::String => JsonCells::Text(Box::new(s.str().context("a text column")?.iter())),
            DataType::Datetime(unit, _) => {
                let unit = *unit;
                let physical = s.to_physical_repr();
                let values = physical.i64().context("a time column")?.iter().map(|t| t.map(|t| to_ms(t, unit)));
                JsonCells::Times(values.collect::<Vec<_>>().into_iter())
            }
            // One chunk (see `write_jsonl`), which `Series::iter` needs.
            _ => JsonCells::Values(s.iter().map(|v| json_cell(&v)).collect::<Vec<_>>().into_iter()),
        })
    }

    fn write_next(&mut self, out: &mut Vec<u8>, layout: Layout) -> Result<()> {
        match self {
            JsonCells::Text(it) => match it.next().flatten() {
                Some(text) => json_str(out, text)?,
                None => out.extend_from_slice(b"null"),
            },
            JsonCells::Times(it) => match it.next().flatten() {
                Some(ms) => {
                    out.push(b'"');
                    crate::time::push_utc_ms(out, ms);
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            },
            JsonCells::Values(it) => {
                let value = it.next().unwrap_or(serde_json::Value::Null);
                match layout {
                    Layout::Line => serde_json::to_writer(&mut *out, &value).map_err(json_err)?,
                    // A list printed on lines of its own, indented under its key (a JSON text
                    // holds no raw line break, so every break is the printer's).
                    Layout::Pretty => {
                        let text = serde_json::to_string_pretty(&value).map_err(json_err)?;
                        out.extend_from_slice(text.replace('\n', "\n    ").as_bytes());
                    }
                }
            }
        }
        Ok(())
    }
}

/// `text` as a JSON string, as serde_json writes it: text with nothing to escape (a quote, a
/// backslash or a control character) is copied whole, the rest goes through serde_json.
fn json_str(out: &mut Vec<u8>, text: &str) -> Result<()> {
    // Sixteen bytes at a time without an early exit, which the compiler turns into vector code.
    let needs_escape = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    let bytes = text.as_bytes();
    let mut chunks = bytes.chunks_exact(16);
    let plain = chunks.by_ref().all(|c| !c.iter().fold(false, |any, b| any | needs_escape(b)))
        && !chunks.remainder().iter().any(needs_escape);
    if plain {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text).map_err(json_err)
    }
}

pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(f).finish(df).map(|_| ()).context("writing parquet")
}

/// Timesketch's required fields in front of the event's own: `message`, `datetime` (RFC 3339),
/// `timestamp_desc`.
pub fn timesketch(df: &DataFrame) -> Result<DataFrame> {
    use crate::ingest::frame::col_name as c;
    // Timesketch takes events: an answer without their time (activity, failures, unused, sql
    // aggregates) is refused plainly rather than failing inside the view.
    if df.column(c::EVENT_TIME).is_err() {
        return Err(Error::Usage(
            "--format timesketch writes events: use it with timeline, root, detect or hunt (this answer has no event_time)"
                .into(),
        ));
    }
    let schema = df.schema();
    // A column the rows lack (detect's rows have no event_source) reads as empty.
    let text = |name: &str| {
        if schema.contains(name) {
            col(name).cast(DataType::String).fill_null(lit(""))
        } else {
            lit("")
        }
    };
    let message = concat_str(
        [
            text(c::PRINCIPAL),
            lit(" "),
            text(c::EVENT_SOURCE),
            lit(":"),
            text(c::EVENT_NAME),
            lit(" from "),
            text(c::SOURCE_IP),
            when(text(c::ERROR_CODE).neq(lit(""))).then(lit(" failed: ") + text(c::ERROR_CODE)).otherwise(lit("")),
        ],
        "",
        true,
    );
    // Rule hits (`hunt`) and findings (`detect`) say what fired: its title, then who did what.
    let message = if schema.contains("rule_title") {
        text("rule_title")
    } else if schema.contains("check_id") && schema.contains("title") {
        concat_str([text("title"), lit(": "), message], "", true)
    } else {
        message
    };
    df.clone()
        .lazy()
        .select([
            message.alias("message"),
            col(c::EVENT_TIME).dt().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias("datetime"),
            lit("Event Time").alias("timestamp_desc"),
            all().as_expr(),
        ])
        .collect()
        .context("building the Timesketch view")
}

/// serde_json's error as ours: a failed write stays an I/O error (so a closed pipe is recognised).
fn json_err(e: serde_json::Error) -> Error {
    Error::json_write(e)
}

/// Write one section as the streaming engine produces it, a batch at a time: the answer is never
/// held whole. The bytes are those `write_sections` writes (a table longer than
/// `TABLE_HELD_ROWS` rows excepted: see `Table`; Parquet's row groups may differ).
pub fn write_stream(sink: &Sink<'_>, mut lf: LazyFrame) -> Result<()> {
    let schema = lf.collect_schema().context("planning the answer")?;
    write_batches(sink, &schema, |each| crate::query::stream(lf, each))
}

/// Write named sections as they are produced, none held whole: a single section as `write_stream`
/// writes it; several as `write_sections` writes them (a table per section under its title; JSON
/// an object of arrays keyed by section name, in their order; the other formats the first
/// section).
pub fn write_sections_streamed(sink: &Sink<'_>, sections: Vec<(String, LazyFrame)>) -> Result<()> {
    let several = sections.len() > 1 && matches!(sink.format, Format::Json | Format::Table);
    let mut sections = sections.into_iter();
    let Some(first) = sections.next() else { return Err(Error::Usage("nothing to write".into())) };
    if !several {
        return write_stream(sink, first.1);
    }
    let mut sections: Vec<(String, LazyFrame)> = std::iter::once(first).chain(sections).collect();
    // A bad `--columns` is known before anything is written.
    let mut schemas = Vec::with_capacity(sections.len());
    for (name, lf) in &mut sections {
        let schema = lf.collect_schema().context(&format!("planning the answer ({name})"))?;
        sink.choose(DataFrame::empty_with_schema(&schema))?;
        schemas.push(schema);
    }
    let mut w = open_output(sink.output)?;
    if sink.format == Format::Table {
        for (n, ((name, lf), schema)) in sections.into_iter().zip(schemas).enumerate() {
            if n > 0 {
                writeln!(w).map_err(io_err)?;
            }
            let empty = sink.choose(DataFrame::empty_with_schema(&schema))?;
            let mut table = Table::new(&empty, TABLE_CELL_CHARS, sink.width, sink.zone).with_title(&name);
            crate::query::stream(lf, |df| table.add(&mut w, &sink.choose(df)?))?;
            table.finish(&mut w)?;
        }
        return w.flush().map_err(io_err);
    }
    // An object of arrays as serde_json's pretty printer writes its map (in insertion order: a
    // dependency enables `preserve_order`), each array as `write_json_rows` writes one, a level
    // deeper (JSON text has no newline but between its tokens: indenting is putting two spaces
    // after each).
    let indented = |w: &mut dyn Write, text: &[u8]| -> Result<()> {
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                w.write_all(b"\n  ").map_err(io_err)?;
            }
            w.write_all(line).map_err(io_err)?;
        }
        Ok(())
    };
    w.write_all(b"{").map_err(io_err)?;
    let mut text = Vec::new();
    for (n, (name, lf)) in sections.into_iter().enumerate() {
        w.write_all(if n == 0 { b"\n  " } else { b",\n  " }).map_err(io_err)?;
        w.write_all(&serde_json::to_vec(&name).map_err(json_err)?).map_err(io_err)?;
        w.write_all(b": ").map_err(io_err)?;
        let mut rows = 0;
        crate::query::stream(lf, |df| {
            text.clear();
            rows = write_json_rows(&mut text, &sink.choose(df)?, Layout::Pretty, rows)?;
            indented(&mut w, &text)
        })?;
        indented(&mut w, if rows == 0 { b"[]" } else { b"\n]" })?;
    }
    w.write_all(b"\n}\n").map_err(io_err)?;
    w.flush().map_err(io_err)
}

/// Rows (at most) of a Parquet row group written as an answer streams: Polars' own default.
const PARQUET_GROUP_ROWS: usize = 512 * 512;
/// Bytes (at most, as Polars estimates them) of the rows held for one Parquet row group: small
/// batches are gathered into row groups of a useful size, and a row group of a wide answer (`sql`'s
/// `select *`, the JSON blobs) is not a memory peak of its own.
const PARQUET_GROUP_BYTES: usize = 8 << 20;

/// Polars' Parquet writer taking row groups.
type ParquetBatches = polars::io::parquet::write::BatchedWriter<std::fs::File>;

/// Where the batches of a streamed answer go, by format.
enum RowSink {
    /// JSON (`rows` so far), JSON Lines or CSV text.
    Text {
        w: Box<dyn Write + Send>,
        rows: u64,
    },
    Table {
        w: Box<dyn Write + Send>,
        table: Table,
    },
    /// Row groups of up to `PARQUET_GROUP_ROWS` rows: those waiting in `held`.
    Parquet {
        writer: Box<ParquetBatches>,
        held: Option<DataFrame>,
    },
}

impl RowSink {
    /// Write the Parquet rows held as one row group.
    fn write_group(writer: &mut ParquetBatches, held: &mut Option<DataFrame>) -> Result<()> {
        if let Some(mut df) = held.take() {
            // One chunk per column: the writer needs the columns' chunks aligned.
            df.rechunk_mut_par();
            writer.write_batch(&df).context("writing parquet")?;
        }
        Ok(())
    }
}

/// Write one section from batches that `produce` hands to the writer it is given, in order;
/// `schema` gives the columns (a CSV header, a table's titles, Parquet's schema) when no batch
/// comes. The bytes are those `write_sections` writes for the same rows (but see `write_stream`).
///
/// The batches are serialized and written on a thread of their own while `produce` makes the next
/// (two batches wait at most), so a question that makes its rows on one thread (`hunt` and
/// `detect` merging their hits in time order) is not also stopped by the writing. A write that
/// fails (a closed pipe) stops `produce` at its next batch and is the error returned.
pub fn write_batches(
    sink: &Sink<'_>,
    schema: &Schema,
    produce: impl FnOnce(&mut dyn FnMut(DataFrame) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let csv = match sink.format {
        Format::Csv => true,
        Format::Timesketch => sink.output.is_some_and(|p| p.extension().is_some_and(|e| e == "csv")),
        _ => false,
    };
    // The columns, and a bad `--columns`, are known before anything is written.
    let empty = DataFrame::empty_with_schema(schema);
    let empty = sink.choose(if sink.format == Format::Timesketch { timesketch(&empty)? } else { empty })?;
    let mut out = match sink.format {
        Format::Parquet => {
            let path = sink.output.ok_or_else(|| Error::Usage("--format parquet needs -o FILE".into()))?;
            let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
            let writer = ParquetWriter::new(f).batched(empty.schema()).context("writing parquet")?;
            RowSink::Parquet { writer: Box::new(writer), held: None }
        }
        Format::Table => RowSink::Table {
            w: open_output(sink.output)?,
            table: Table::new(&empty, TABLE_CELL_CHARS, sink.width, sink.zone),
        },
        _ => {
            let mut w = open_output(sink.output)?;
            if csv {
                // The header even when no row comes.
                let header: Vec<String> = empty.columns().iter().map(|c| csv_field(c.name())).collect();
                writeln!(w, "{}", header.join(",")).map_err(io_err)?;
            }
            RowSink::Text { w, rows: 0 }
        }
    };
    // Set when `produce` has handed on every batch: a JSON document is closed only then, so that the
    // rows of a run that failed half-way are not taken for a whole answer.
    let complete = std::sync::atomic::AtomicBool::new(false);
    let complete = &complete;
    let write = move |rx: std::sync::mpsc::Receiver<DataFrame>| -> Result<()> {
        for df in rx {
            let df = sink.choose(if sink.format == Format::Timesketch { timesketch(&df)? } else { df })?;
            match &mut out {
                RowSink::Text { w, rows } => match sink.format {
                    Format::Json => *rows = write_json_rows(w, &df, Layout::Pretty, *rows)?,
                    _ if csv => write_csv_rows(w, &df)?,
                    _ => write_jsonl(w, &df)?,
                },
                RowSink::Table { w, table } => table.add(w, &df)?,
                RowSink::Parquet { writer, held } => {
                    if df.schema() != empty.schema() {
                        return Err(Error::Polars {
                            context: "writing parquet".into(),
                            cause: PolarsError::SchemaMismatch(
                                format!("a batch's columns {:?}, not {:?}", df.schema(), empty.schema()).into(),
                            ),
                        });
                    }
                    match held {
                        Some(h) => {
                            h.vstack_mut(&df).context("writing parquet")?;
                        }
                        None => *held = Some(df),
                    }
                    let h = held.as_ref().expect("rows held");
                    if h.height() >= PARQUET_GROUP_ROWS || h.estimated_size() >= PARQUET_GROUP_BYTES {
                        RowSink::write_group(writer, held)?;
                    }
                }
            }
        }
        let done = complete.load(std::sync::atomic::Ordering::Acquire);
        match out {
            RowSink::Text { mut w, rows } => {
                if sink.format == Format::Json && done {
                    close_json(&mut w, rows)?;
                }
                w.flush().map_err(io_err)
            }
            RowSink::Table { mut w, table } => {
                table.finish(&mut w)?;
                w.flush().map_err(io_err)
            }
            // A Parquet file without its footer is unreadable: a failed run leaves no answer to
            // be taken for a whole one.
            RowSink::Parquet { mut writer, mut held } if done => {
                RowSink::write_group(&mut writer, &mut held)?;
                writer.finish().map(|_| ()).context("writing parquet")
            }
            RowSink::Parquet { .. } => Ok(()),
        }
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(2);
        let writer = scope.spawn(move || write(rx));
        // A batch that cannot be handed on means the writer stopped at an error: its error is the
        // one returned, below.
        let produced =
            produce(&mut |df| tx.send(df).map_err(|_| io_err(std::io::Error::other("the output writer stopped"))));
        complete.store(produced.is_ok(), std::sync::atomic::Ordering::Release);
        drop(tx);
        let written =
            writer.join().unwrap_or_else(|_| Err(io_err(std::io::Error::other("the output writer panicked"))));
        written.and(produced)
    })
}

/// Where and how to write an answer.
pub struct Sink<'a> {
    pub format: Format,
    pub output: Option<&'a Path>,
    /// The line width tables are fitted to (`None`: as wide as their cells, `--wide`).
    pub width: Option<usize>,
    /// `--columns`: only these columns, in this order (`None`: all).
    pub columns: Option<&'a [String]>,
    /// The zone tables show times in (`--tz`, `--localtime`); every other format writes UTC.
    pub zone: Zone,
}

impl<'a> Sink<'a> {
    /// A sink writing `format` to `output` (stdout when `None`), tables fitted to the terminal.
    pub fn new(format: Format, output: Option<&'a Path>) -> Self {
        Sink {
            format,
            output,
            width: if output.is_none() { terminal_width() } else { None },
            columns: None,
            zone: Zone::Utc,
        }
    }

    /// The columns `--columns` chose, or an error naming the ones that exist.
    pub fn choose(&self, df: DataFrame) -> Result<DataFrame> {
        let Some(cols) = self.columns else { return Ok(df) };
        if let Some(bad) = cols.iter().find(|c| df.column(c).is_err()) {
            let names: Vec<&str> = df.columns().iter().map(|c| c.name().as_str()).collect();
            return Err(Error::Usage(format!("--columns: no column {bad:?}; the columns are {}", names.join(", "))));
        }
        df.select(cols.iter().map(|c| c.as_str())).context("choosing columns")
    }
}

/// Write named sections. Table shows each under its title; JSON is the array of rows of a single
/// section or an object of arrays keyed by section name; CSV, JSON Lines and Parquet write the first
/// section (choose another with `--section`).
pub fn write_sections(sink: &Sink<'_>, sections: Vec<(String, DataFrame)>) -> Result<()> {
    let mut sections =
        sections.into_iter().map(|(name, df)| Ok((name, sink.choose(df)?))).collect::<Result<Vec<_>>>()?;
    if sink.format == Format::Parquet {
        let path = sink.output.ok_or_else(|| Error::Usage("--format parquet needs -o FILE".into()))?;
        let (_, df) = sections.first_mut().ok_or_else(|| Error::Usage("nothing to write".into()))?;
        return write_parquet(path, df);
    }
    let mut w = open_output(sink.output)?;
    match sink.format {
        Format::Table => {
            let many = sections.len() > 1;
            for (n, (name, df)) in sections.iter().enumerate() {
                if many {
                    if n > 0 {
                        writeln!(w).map_err(io_err)?;
                    }
                    writeln!(w, "{} ({} rows)", name.replace('_', " "), df.height()).map_err(io_err)?;
                }
                write_table_in(&mut w, df, TABLE_CELL_CHARS, sink.width, sink.zone)?;
            }
        }
        Format::Json if sections.len() > 1 => {
            let mut obj = serde_json::Map::new();
            for (name, df) in &sections {
                obj.insert(
                    name.clone(),
                    serde_json::Value::from(
                        rows_json(df)?.into_iter().map(Into::into).collect::<Vec<serde_json::Value>>(),
                    ),
                );
            }
            serde_json::to_writer_pretty(&mut w, &obj).map_err(json_err)?;
            writeln!(w).map_err(io_err)?;
        }
        Format::Json => write_json(&mut w, &sections[0].1)?,
        Format::Jsonl => write_jsonl(&mut w, &sections[0].1)?,
        Format::Csv => write_csv(&mut w, &sections[0].1)?,
        Format::Timesketch => {
            let df = timesketch(&sections[0].1)?;
            if sink.output.is_some_and(|p| p.extension().is_some_and(|e| e == "csv")) {
                write_csv(&mut w, &df)?;
            } else {
                write_jsonl(&mut w, &df)?;
            }
        }
        Format::Parquet => unreachable!("handled above"),
    }
    w.flush().map_err(io_err)
}

/// The writer for a command's data: `-o FILE` or stdout.
pub fn open_output(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| Error::io(p, e))?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text cell is written exactly as serde_json writes the string, whatever needs escaping and
    /// wherever it sits (in a sixteen-byte chunk or in the remainder).
    #[test]
    fn json_text_is_escaped_as_serde_json_escapes_it() {
        let long = "arn:aws:iam::123456789012:role/a-long-role-name";
        let mut cases: Vec<String> =
            ["", "plain", "é ü ✓ 𝄞", "\u{7f}del", "tab\there", "q\"uote", "back\\slash", "\u{1b}[31m"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in [0, 5, 15, 16, 17, long.len() - 1, long.len()] {
                let mut s = long.to_string();
                s.insert(at, special);
                cases.push(s);
            }
        }
        for case in cases {
            let mut ours = Vec::new();
            json_str(&mut ours, &case).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&case).unwrap(), "{case:?}");
        }
    }

    /// Batches go through the writer thread in order; a JSON document is closed only when every
    /// batch came, and the producer's error is returned. (A write that fails mid-run, a closed
    /// pipe, is tests/cli/output.rs's.)
    #[test]
    fn batches_are_written_in_order_and_a_failed_run_is_not_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let batch = |n: i64| df!("n" => [n, n + 1]).unwrap();
        let schema = batch(0).schema().as_ref().clone();
        let sink = Sink::new(Format::Json, Some(&path));
        let run = |fail: bool| {
            write_batches(&sink, &schema, |each| {
                for n in [0, 2, 4] {
                    each(batch(n))?;
                }
                if fail {
                    return Err(Error::Usage("stopped".into()));
                }
                Ok(())
            })
        };
        run(false).unwrap();
        let whole: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let ns: Vec<i64> = whole.as_array().unwrap().iter().map(|r| r["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, [0, 1, 2, 3, 4, 5]);
        assert!(matches!(run(true), Err(Error::Usage(m)) if m == "stopped"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"n\": 5") && !text.trim_end().ends_with(']'), "{text}");
    }

    /// A frame with every kind of cell the answers hold: text needing escapes, nulls, numbers,
    /// booleans, times and lists (empty ones included).
    fn every_cell_kind() -> DataFrame {
        let lists = [Some(vec!["x", "y\"z"]), Some(vec![]), None]
            .into_iter()
            .map(|l| l.map(|l| Series::new("".into(), l)))
            .collect::<ListChunked>()
            .into_series()
            .with_name("list".into());
        let mut df = df!(
            "text" => [Some("a\"b"), None, Some("c")],
            "n" => [Some(1i64), Some(-2), None],
            "flag" => [Some(true), None, Some(false)],
            "ms" => [Some(0i64), Some(1_700_000_000_123), None],
        )
        .unwrap()
        .lazy()
        .with_column(col("ms").cast(DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))))
        .collect()
        .unwrap();
        df.with_column(lists.into()).unwrap();
        df
    }

    /// The JSON document is the `rows_json` objects as serde_json's pretty printer writes them,
    /// whole or streamed in batches, and the empty answer is `[]`.
    #[test]
    fn json_is_the_row_objects_pretty_printed() {
        let df = every_cell_kind();
        let mut expected = serde_json::to_string_pretty(&rows_json(&df).unwrap()).unwrap();
        expected.push('\n');
        assert!(expected.contains("\"list\": [\n      \"x\",") && expected.contains("\"list\": []"), "{expected}");
        let mut whole = Vec::new();
        write_json(&mut whole, &df).unwrap();
        assert_eq!(String::from_utf8(whole).unwrap(), expected);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let sink = Sink::new(Format::Json, Some(&path));
        write_batches(&sink, df.schema(), |each| {
            each(df.slice(0, 1))?;
            each(df.slice(1, 0))?;
            each(df.slice(1, 2))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);

        let mut empty = Vec::new();
        write_json(&mut empty, &df.clear()).unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), "[]\n");
    }

    /// JSON Lines rows are the `rows_json` objects serialized, nulls and every cell type included.
    #[test]
    fn json_lines_are_the_row_objects() {
        let df = every_cell_kind();
        let mut out = Vec::new();
        write_jsonl(&mut out, &df).unwrap();
        let expected: String =
            rows_json(&df).unwrap().iter().map(|row| serde_json::to_string(row).unwrap() + "\n").collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert!(expected.contains(r#""text":null"#) && expected.contains("2023-11-14T22:13:20.123Z"), "{expected}");
    }

    /// A table given its rows a frame at a time is the table of the whole frame while it has at most
    /// `TABLE_HELD_ROWS` rows; past that, the rows after them are written in the layout of those
    /// (fitted: wider text is cut to its column, an ARN from its start; a number, or any cell under
    /// `--wide`, overflows), and nothing else is held.
    #[test]
    fn a_table_streams_past_its_held_rows_in_their_layout() {
        let frame = |n: usize, wide_at: Option<usize>| {
            let who: Vec<String> = (0..n)
                .map(|i| match wide_at {
                    Some(at) if i == at => format!("arn:aws:iam::123456789012:user/{}", "x".repeat(20)),
                    _ => format!("user-{}", i % 7),
                })
                .collect();
            let n_col: Vec<i64> = (0..n as i64).collect();
            df!("who" => who, "n" => n_col, "note" => vec!["a note that is long enough"; n]).unwrap()
        };
        let batched = |df: &DataFrame, total: Option<usize>, step: usize| {
            let mut out = Vec::new();
            let mut table = Table::new(df, 60, total, Zone::Utc);
            let mut at = 0;
            while at < df.height() {
                table.add(&mut out, &df.slice(at as i64, step)).unwrap();
                at += step;
            }
            table.finish(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let whole = |df: &DataFrame, total: Option<usize>| {
            let mut out = Vec::new();
            write_table_in(&mut out, df, 60, total, Zone::Utc).unwrap();
            String::from_utf8(out).unwrap()
        };
        // Within the held rows: the same table however the rows come, the wide cell widening its column.
        let small = frame(500, Some(499));
        for total in [None, Some(60)] {
            assert_eq!(batched(&small, total, 7), whole(&small, total), "{total:?}");
        }
        // `who` is as wide as its widest cell (51 characters).
        assert!(whole(&small, None).lines().next().unwrap().starts_with(&format!("who{}n", " ".repeat(50))));
        // Past them: the layout of the first `TABLE_HELD_ROWS` rows, whatever comes after.
        let at = TABLE_HELD_ROWS + 10;
        let big = frame(TABLE_HELD_ROWS + 20, Some(at));
        let head = frame(TABLE_HELD_ROWS, None);
        for total in [None, Some(60)] {
            let text = batched(&big, total, 999);
            let held = whole(&head, total);
            let first: Vec<&str> = held.lines().take(TABLE_HELD_ROWS + 2).collect();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), TABLE_HELD_ROWS + 22, "{total:?}");
            assert_eq!(&lines[..TABLE_HELD_ROWS + 2], &first[..], "{total:?}");
            let wide_row = lines[at + 2];
            let column = first[0].find('n').unwrap();
            match total {
                // Cut from its start to the width of `who`, which the other rows set; the number
                // after it overflows its column.
                Some(_) => {
                    assert!(
                        wide_row.starts_with("…xxx") && wide_row[column + 2..].starts_with(&at.to_string()),
                        "{wide_row}"
                    )
                }
                None => assert!(wide_row.starts_with("arn:aws:iam::123456789012:user/xxx"), "{wide_row}"),
            }
            // The rows around it keep the columns of the first rows.
            assert_eq!(lines[at + 3].find(&(at + 1).to_string()), Some(column), "{}", lines[at + 3]);
        }
    }

    /// Several sections written as they come are the sections written whole: JSON's object of
    /// arrays (lists, nulls and an empty section included), the tables under their titles; a
    /// section laid out before its end has its count of rows below it.
    #[test]
    fn sections_streamed_are_the_sections_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let numbers = df!("n" => [3i64, 1, 2], "name" => ["c", "a", "b"]).unwrap();
        let sections = || {
            vec![
                ("cells".to_string(), every_cell_kind()),
                ("none".to_string(), numbers.clear()),
                ("by_number".to_string(), numbers.clone()),
            ]
        };
        for format in [Format::Json, Format::Table] {
            let sink = Sink::new(format, Some(&path));
            write_sections(&sink, sections()).unwrap();
            let whole = std::fs::read_to_string(&path).unwrap();
            let lazy = sections().into_iter().map(|(name, df)| (name, df.lazy())).collect();
            write_sections_streamed(&sink, lazy).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), whole, "{format:?}");
        }
        let long = (0..TABLE_HELD_ROWS as i64 + 5).collect::<Vec<_>>();
        let long = vec![("long_one".to_string(), df!("n" => long).unwrap().lazy()), ("short".into(), numbers.lazy())];
        write_sections_streamed(&Sink::new(Format::Table, Some(&path)), long).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..3], ["long one", "n", "----"], "the widths of the first rows");
        let end = TABLE_HELD_ROWS + 8;
        assert_eq!(
            lines[end - 1..end + 3],
            ["10004", &format!("({} rows)", TABLE_HELD_ROWS + 5), "", "short (3 rows)"]
        );
    }

    /// Text that a spreadsheet would run as a formula gets a leading `'`; numbers keep their sign.
    #[test]
    fn csv_neutralizes_text_not_numbers() {
        let df = df!("text" => ["-1", "=1+1", "plain", "@x"], "n" => [-1i64, 2, 3, 4]).unwrap();
        let mut out = Vec::new();
        write_csv(&mut out, &df).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "text,n\n'-1,-1\n'=1+1,2\nplain,3\n'@x,4\n");
    }
}
