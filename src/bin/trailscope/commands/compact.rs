//! `trailscope compact STORE`: merge each partition's small Parquet files into one, atomically.

use std::io::{IsTerminal, Write};

use crate::cli::{CompactArgs, SummaryFormat};
use trailscope::error::{Error, Result};
use trailscope::store::Store;

pub fn run(args: &CompactArgs) -> Result<bool> {
    let mut store = Store::open(&args.store)?;
    let stats = store.compact(args.min_files)?;
    let mut w = super::open_output(None)?;
    let io = |e| Error::io("<output>", e);
    let table =
        args.format.unwrap_or(if std::io::stdout().is_terminal() { SummaryFormat::Table } else { SummaryFormat::Json })
            == SummaryFormat::Table;
    if table {
        writeln!(w, "partitions compacted     {}", stats.partitions_compacted).map_err(io)?;
        writeln!(w, "parts before / after     {} / {}", stats.parts_before, stats.parts_after).map_err(io)?;
        writeln!(w, "rows rewritten           {}", stats.rows).map_err(io)?;
        writeln!(w, "superseded rows dropped  {}", stats.rows_dropped_superseded).map_err(io)?;
        writeln!(w, "duplicates dropped       {}", stats.duplicates_dropped).map_err(io)?;
        writeln!(w, "orphan files removed     {}", stats.orphans_removed).map_err(io)?;
    } else {
        serde_json::to_writer_pretty(&mut w, &stats).map_err(Error::json_write)?;
        writeln!(w).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(false)
}
