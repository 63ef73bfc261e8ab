//! `trailscope sql-pack` (to be written).

use crate::cli::SqlPackArgs;
use crate::error::{Error, Result};

pub fn run(_args: &SqlPackArgs) -> Result<bool> {
    Err(Error::Usage("sql-pack is not implemented yet".into()))
}
