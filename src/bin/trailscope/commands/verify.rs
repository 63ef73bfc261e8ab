//! `trailscope verify`: run the integrity validation and print the verdict and the findings.

use std::io::{IsTerminal, Write};

use crate::cli::{VerifyArgs, VerifyFormat};
use trailscope::error::{Error, Result};
use trailscope::verify::{self, PublicKeys};

/// Returns the exit code: 0 all checks passed, 1 integrity problems, 2 unreadable input.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    let keys = args.public_keys.as_deref().map(PublicKeys::load).transpose()?;
    let report = verify::verify(&args.input, keys.as_ref(), args.max_file_mb.saturating_mul(1 << 20))?;
    let io = |e| Error::io("<output>", e);
    let mut w = super::open_output(args.output.as_deref())?;
    let format = args.format.unwrap_or(if args.output.is_none() && std::io::stdout().is_terminal() {
        VerifyFormat::Table
    } else {
        VerifyFormat::Json
    });
    let rows: Vec<&verify::Finding> = report.unreadable.iter().chain(&report.findings).collect();
    match format {
        VerifyFormat::Json => {
            serde_json::to_writer_pretty(&mut w, &report).map_err(Error::json_write)?;
            writeln!(w).map_err(io)?;
        }
        VerifyFormat::Table => {
            writeln!(w, "{}", report.verdict).map_err(io)?;
            for f in &rows {
                let detail = trailscope::fs::printable(&f.detail);
                writeln!(w, "{:<20} {}  {detail}  {}", f.kind, f.path, f.digest).map_err(io)?;
            }
        }
        VerifyFormat::Csv => {
            eprintln!("trailscope: {}", report.verdict);
            writeln!(w, "kind,path,digest,detail").map_err(io)?;
            for f in &rows {
                let q = |s: &str| format!("\"{}\"", trailscope::output::neutralize_formula(s).replace('"', "\"\""));
                writeln!(w, "{},{},{},{}", f.kind, q(&f.path), q(&f.digest), q(&f.detail)).map_err(io)?;
            }
        }
    }
    w.flush().map_err(io)?;
    Ok(if !report.unreadable.is_empty() {
        2
    } else if report.problems > 0 {
        1
    } else {
        0
    })
}
