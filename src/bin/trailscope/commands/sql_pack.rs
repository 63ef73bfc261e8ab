//! `trailscope sql-pack`: write the questions as SQL for another engine (see `query/sql_pack.rs`).

use std::io::Write;

use crate::cli::SqlPackArgs;
use trailscope::error::{Error, Result};
use trailscope::query::sql_pack;

pub fn run(args: &SqlPackArgs) -> Result<bool> {
    let files = sql_pack::pack(args.dialect, &args.location).map_err(Error::Usage)?;
    match &args.output {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            for (name, sql) in files {
                let path = dir.join(name);
                std::fs::write(&path, sql).map_err(|e| Error::io(&path, e))?;
            }
        }
        None => {
            let mut w = super::open_output(None)?;
            for (name, sql) in files {
                writeln!(w, "-- ===== {name} =====\n{sql}").map_err(|e| Error::io("<output>", e))?;
            }
            w.flush().map_err(|e| Error::io("<output>", e))?;
        }
    }
    Ok(false)
}
