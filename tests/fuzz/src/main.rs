//! One fuzz target over what trailscope does first with every input file: gunzip (multi-member,
//! capped), recognise the shape, parse the records, and read each row's values from them; the
//! one-pass parser (`fast`) must agree with serde on every file it takes, and a file read in
//! windows (`window`, as large files are) with the file read whole. Any panic, abort or
//! hang is a finding. Built and run by `scripts/fuzz` under AFL++; built plainly
//! (`cargo run -- FILE...`) it replays files, e.g. a crash AFL saved.
//!
//! The modules are trailscope's own source files, compiled here through `#[path]`; `fs` stands in
//! for the one helper of `crate::fs` the decoder calls when it opens a path (not on this in-memory
//! path).

#![allow(dead_code)]

#[path = "../../../src/ingest/decode.rs"]
mod decode;
#[path = "../../../src/ingest/fast.rs"]
mod fast;
#[path = "../../../src/ingest/parse.rs"]
mod parse;
#[path = "../../../src/ingest/record.rs"]
mod record;
#[path = "../../../src/ingest/window.rs"]
mod window;

/// The paths the modules use among themselves (`crate::ingest::record::RawEvent`).
mod ingest {
    pub(crate) use super::{decode, fast, parse, record, window};
}

mod fs {
    /// What `crate::fs::special_kind` answers for a regular file; the target never opens a path.
    pub fn special_kind(_: std::fs::FileType) -> Option<&'static str> {
        None
    }
}

/// The cap on one file's decompressed bytes (trailscope's default is 1 GiB; small here so that a
/// bomb is refused quickly, which is what the cap is for).
const CAP: u64 = 16 << 20;

fn check(data: &[u8]) {
    // A file read in windows (as a large one is, `window`) must be read whole too, to the same
    // records in order (a difference aborts); windows of 1 KB of text, so that files cross them.
    let mut windowed: Vec<String> = Vec::new();
    let collect = |records: &[ingest::record::Leaves<'_>]| {
        windowed.extend(records.iter().map(|r| format!("{r:?}")));
        Ok(())
    };
    let read = if data.starts_with(&[0x1f, 0x8b]) {
        ingest::window::for_each_window(flate2::read::MultiGzDecoder::new(data), CAP, 1024, collect)
    } else {
        ingest::window::for_each_window(data, CAP, 1024, collect)
    };
    if read.is_ok() {
        let text = if data.starts_with(&[0x1f, 0x8b]) {
            ingest::decode::gunzip(data, CAP).map_err(|e| e.to_string())
        } else {
            Ok(data.to_vec())
        };
        let whole = text.and_then(|text| {
            let (shape, records) = ingest::parse::parse(&text).map_err(|e| e.to_string())?;
            Ok((shape, records.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>()))
        });
        assert_eq!(whole, Ok((ingest::parse::Shape::Records, windowed)), "windows and the whole file differ");
    }
    let inflated;
    let bytes = if data.starts_with(&[0x1f, 0x8b]) {
        match ingest::decode::gunzip(data, CAP) {
            Ok(v) => {
                inflated = v;
                &inflated[..]
            }
            Err(_) => return,
        }
    } else {
        data
    };
    if let Ok((_, events)) = ingest::parse::parse(bytes) {
        use ingest::record::{boolean, json_text, text};
        for ev in &events {
            let _ = ev.looks_like_cloudtrail();
            // A row's values as `frame::FrameBuilder::push` reads them (that module needs Polars).
            let _ = ingest::record::event_time_ms(ev);
            let _ = (ingest::record::event_id(ev), ingest::record::principal(ev));
            let _ = (ingest::record::console_login(ev), ingest::record::session_created_ms(ev));
            let _ = [ev.read_only, ev.management_event, ev.mfa_authenticated].map(boolean);
            let blobs = [ev.request_parameters, ev.response_elements, ev.additional_event_data, ev.resources];
            let _ = blobs.map(json_text);
            let leaves = [
                ev.event_version,
                ev.event_source,
                ev.event_name,
                ev.aws_region,
                ev.source_ip,
                ev.user_agent,
                ev.error_code,
                ev.error_message,
                ev.event_type,
                ev.event_category,
                ev.recipient_account_id,
                ev.request_id,
                ev.shared_event_id,
                ev.vpc_endpoint_id,
                ev.identity_type,
                ev.principal_id,
                ev.arn,
                ev.account_id,
                ev.access_key_id,
                ev.user_name,
                ev.invoked_by,
                ev.issuer_type,
                ev.issuer_principal_id,
                ev.issuer_arn,
                ev.issuer_user_name,
                ev.source_identity,
                ev.mfa_used,
                ev.tls_version,
            ];
            for leaf in leaves {
                let _ = text(leaf);
            }
        }
    }
    // The one-pass parser must give serde's records for every file it takes (a difference aborts).
    if let Ok(body) = ingest::parse::body(bytes) {
        if let Ok(fast) = ingest::fast::parse(body) {
            let serde = ingest::parse::parse_with_serde(body).map_err(|e| e.to_string());
            assert_eq!(Ok(fast), serde, "fast and serde parsers differ");
        }
    }
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if !files.is_empty() {
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
            check(&data);
            println!("{f}: ok");
        }
        return;
    }
    afl::fuzz!(|data: &[u8]| {
        check(data);
    });
}
