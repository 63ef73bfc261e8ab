//! Ingest: bytes to rows. `decode` inflates (mmap, libdeflate), `parse` recognises the file's shape
//! (`fast` parses the usual ones in one pass), `window` reads a large delivery file a window of
//! records at a time (inflated as a stream), `record` maps a CloudTrail record to a row, `frame`
//! holds the columns, and `pipeline` runs it all in parallel with the accounting of every file and
//! record.

pub mod decode;
pub mod fast;
pub mod frame;
pub mod parse;
pub mod pipeline;
pub mod record;
pub mod window;
