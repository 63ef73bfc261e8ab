//! `trailscope report` (to be written).

use crate::cli::ReportArgs;
use crate::error::{Error, Result};

pub fn run(_args: &ReportArgs) -> Result<bool> {
    Err(Error::Usage("report is not implemented yet".into()))
}
