//! `trailscope pull` (to be written).

use crate::cli::PullArgs;
use crate::error::{Error, Result};

pub fn run(_args: &PullArgs) -> Result<bool> {
    Err(Error::Usage("pull is not implemented yet".into()))
}
