//! `trailscope compact` (to be written).

use crate::cli::CompactArgs;
use crate::error::{Error, Result};

pub fn run(_args: &CompactArgs) -> Result<bool> {
    Err(Error::Usage("compact is not implemented yet".into()))
}
