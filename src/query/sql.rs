//! `sql`: ad-hoc Polars SQL over a table named `events` with the frame's columns, for the questions
//! we did not think of. A failing query is reported with the columns that exist.

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::{Error, Result};

/// Plan `query` over `events`. Errors (at planning or, via `explain_error`, at collection) name the
/// available columns.
pub fn plan(events: LazyFrame, query: &str) -> Result<LazyFrame> {
    let mut ctx = SQLContext::new();
    ctx.register("events", events);
    ctx.execute(query).map_err(|e| explain_error(&e))
}

/// A query error with the list of columns of `events`.
pub fn explain_error(e: &PolarsError) -> Error {
    let schema = crate::ingest::frame::schema();
    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
    Error::Usage(format!("SQL error: {e}\ntable `events` has columns: {}", names.join(", ")))
}
