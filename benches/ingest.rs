//! Ingest micro-benchmarks: the cost of each stage for one realistic delivery file, and the
//! alternatives each stage's choice was made against (see README: libdeflate over flate2 + zlib-rs,
//! serde with borrowed `RawValue` leaves over a DOM).
//!
//! Input: the Records of all 55 real files in testdata/invictus-ir/CloudTrail combined into one
//! `{"Records":[...]}` document (2,900 events, ~3.8 MB), kept byte for byte, and the same gzipped in
//! memory. Throughput is the uncompressed JSON bytes, so every group prints MB/s of JSON.
//!
//! Run: `cargo bench --bench ingest` (a filter such as `-- parse/` runs one group).

use std::collections::HashMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::value::RawValue;
use simd_json::prelude::*;

const INVICTUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/invictus-ir/CloudTrail");
const EXPECTED_RECORDS: usize = 2900;
const CAP: u64 = 1 << 30;

/// One delivery file made of every Invictus IR record, in file-name order, records untouched.
fn combined_json() -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(INVICTUS)
        .expect("testdata/invictus-ir/CloudTrail")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 55, "expected the 55 Invictus IR files");
    let texts: Vec<String> = names.iter().map(|p| read_text(p)).collect();
    let mut records: Vec<&RawValue> = Vec::new();
    for text in &texts {
        let mut doc: HashMap<&str, Vec<&RawValue>> = serde_json::from_str(text).expect("Records file");
        records.extend(doc.remove("Records").expect("Records key"));
    }
    assert_eq!(records.len(), EXPECTED_RECORDS);
    let mut out = Vec::with_capacity(texts.iter().map(String::len).sum());
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r.get().as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

fn inflate(c: &mut Criterion, json: &[u8], gz: &[u8]) {
    let mut g = c.benchmark_group("inflate");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("libdeflate", |b| {
        b.iter(|| {
            let out = trailscope::ingest::decode::gunzip(black_box(gz), CAP).expect("gunzip");
            assert_eq!(out.len(), json.len());
            out
        })
    });
    g.bench_function("flate2_zlib_rs", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(black_box(gz)).read_to_end(&mut out).expect("flate2");
            assert_eq!(out.len(), json.len());
            out
        })
    });
    g.finish();
}

fn parse(c: &mut Criterion, json: &[u8]) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("fast", |b| {
        b.iter(|| {
            let (_, records) = trailscope::ingest::parse::parse(black_box(json)).expect("parse");
            assert_eq!(records.len(), EXPECTED_RECORDS);
            records.len()
        })
    });
    let text = std::str::from_utf8(json).expect("UTF-8");
    g.bench_function("serde_raw", |b| {
        b.iter(|| {
            let (_, records) = trailscope::ingest::parse::parse_with_serde(black_box(text)).expect("parse");
            assert_eq!(records.len(), EXPECTED_RECORDS);
            records.len()
        })
    });
    // simd-json parses in place: each iteration gets a fresh copy, made outside the timed part.
    g.bench_function("simd_json_dom", |b| {
        b.iter_batched_ref(
            || json.to_vec(),
            |buf| {
                let v = simd_json::to_borrowed_value(black_box(buf)).expect("simd-json");
                let n = v.get_array("Records").map_or(0, Vec::len);
                assert_eq!(n, EXPECTED_RECORDS);
                n
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(json)).expect("serde_json");
            let n = v["Records"].as_array().map_or(0, Vec::len);
            assert_eq!(n, EXPECTED_RECORDS);
            n
        })
    });
    g.finish();
}

fn frame(c: &mut Criterion, json: &[u8]) {
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("build", |b| {
        b.iter(|| {
            let (_, records) = trailscope::ingest::parse::parse(black_box(json)).expect("parse");
            let mut builder = trailscope::ingest::frame::FrameBuilder::with_capacity(records.len());
            for rec in &records {
                builder.push(rec, "bench/combined.json").expect("every record has a time");
            }
            let df = builder.finish().expect("frame");
            assert_eq!(df.height(), EXPECTED_RECORDS);
            df
        })
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let json = combined_json();
    let gz = gzip(&json);
    inflate(c, &json, &gz);
    parse(c, &json);
    frame(c, &json);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = ingest
}
criterion_main!(benches);
