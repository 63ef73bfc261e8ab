//! The store as a lake (issue #7): the SQL pack answers like the local commands on DuckDB and Spark
//! (run by `tests/cli/sqlpack_run.py`; .ci/run installs duckdb, pytz and pyspark), shards ingest
//! concurrently into one store without duplicates, and compaction keeps every answer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{golden, num, repo_root, TestCommand};

const INPUTS: [&str; 3] = ["testdata/stratus-red-team", "testdata/invictus-ir", "testdata/awsdocs"];

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A store of the three real datasets (awsdocs has one rejected record: exit code 2).
fn store(tmp: &Path) -> PathBuf {
    let store = tmp.join("store");
    let mut args = vec!["scan"];
    args.extend(INPUTS);
    args.extend(["--store", path_str(&store), "--format", "json", "-q"]);
    TestCommand::new(args).run().expect_code(2);
    store
}

/// The local command's rows (the first section when there are several).
fn local(question: &str, store: &Path) -> Vec<Value> {
    let args = match question {
        "used" => vec!["unused", "--used", path_str(store), "--format", "json"],
        q => vec![q, path_str(store), "--format", "json"],
    };
    let v = TestCommand::new(args).run().expect_code(0).json();
    match v {
        Value::Array(rows) => rows,
        Value::Object(mut sections) => match sections.remove(question) {
            Some(Value::Array(rows)) => rows,
            other => panic!("{question}: no section {question}: {other:?}"),
        },
        other => panic!("{question}: {other}"),
    }
}

fn run_pack(dialect: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = store(tmp.path());
    let pack = tmp.path().join(format!("pack-{dialect}"));
    let location = store.join("events");
    TestCommand::new(["sql-pack", "--dialect", dialect, "--location", path_str(&location), "-o", path_str(&pack)])
        .run()
        .expect_code(0);
    let script = repo_root().join("tests/cli/sqlpack_run.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--dialect", dialect, "--pack", path_str(&pack)])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{dialect} failed (are duckdb/pyspark installed? .ci/run installs them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let engine: Value = serde_json::from_slice(&out.stdout).expect("engine JSON");
    for q in ["root", "activity", "failures", "detect", "used"] {
        let want = local(q, &store);
        let got = engine[q].as_array().unwrap_or_else(|| panic!("{dialect}: no {q}"));
        assert!(!want.is_empty(), "{q}: the test data should give rows");
        assert_eq!(got.len(), want.len(), "{dialect} {q}: row count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{dialect} {q}: row {i}");
        }
    }
}

#[test]
fn sql_pack_on_duckdb_answers_like_the_local_commands() {
    run_pack("duckdb");
}

#[test]
fn sql_pack_on_spark_answers_like_the_local_commands() {
    run_pack("spark");
}

#[test]
fn sql_pack_has_a_create_statement_and_a_file_per_question_for_every_dialect() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for d in ["spark", "trino", "athena", "duckdb"] {
        let dir = tmp.path().join(d);
        TestCommand::new(["sql-pack", "--dialect", d, "-o", path_str(&dir)]).run().expect_code(0);
        for f in ["create_table.sql", "root.sql", "activity.sql", "failures.sql", "detect.sql", "used.sql"] {
            let sql = fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{d}/{f}: {e}"));
            assert!(sql.contains("events"), "{d}/{f}");
        }
        let create = fs::read_to_string(dir.join("create_table.sql")).unwrap();
        if d == "duckdb" {
            assert!(create.contains("hive_partitioning = true"), "{d}");
        } else {
            assert!(create.contains("account") && create.contains("region") && create.contains("date"), "{d}");
        }
    }
    let athena = fs::read_to_string(tmp.path().join("athena/create_table.sql")).unwrap();
    assert!(athena.contains("projection.enabled"));
}

/// Copy the Invictus IR files into two disjoint shard directories.
fn shards(tmp: &Path) -> (PathBuf, PathBuf) {
    let src = repo_root().join("testdata/invictus-ir/CloudTrail");
    let mut names: Vec<_> = fs::read_dir(&src).expect("read_dir").map(|e| e.expect("entry").file_name()).collect();
    names.sort();
    let (a, b) = (tmp.join("shard-a"), tmp.join("shard-b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    for (i, n) in names.iter().enumerate() {
        fs::copy(src.join(n), if i % 2 == 0 { &a } else { &b }.join(n)).unwrap();
    }
    (a, b)
}

fn scan_store(store: &Path) -> Value {
    TestCommand::new(["scan", path_str(store), "--format", "json"]).run().expect_code(0).json()
}

#[test]
fn shards_ingest_concurrently_and_a_rerun_adds_nothing() {
    let g = golden("invictus");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = shards(tmp.path());
    let store = tmp.path().join("lake");
    let spawn = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_trailscope"))
            .args(["scan", path_str(dir), "--store", path_str(&store), "--format", "json", "-q"])
            .output()
    };
    // Two writers at once, on a store neither has created yet.
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| spawn(&a));
        let hb = s.spawn(|| spawn(&b));
        (ha.join().unwrap().unwrap(), hb.join().unwrap().unwrap())
    });
    for r in [&ra, &rb] {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let stored = scan_store(&store);
    assert_eq!(num(&stored, "events"), num(&g, "events"));
    // Re-running one shard reads nothing and writes nothing.
    let again = spawn(&a).unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(num(&again, "files_ingested"), 0);
    assert_eq!(num(&again, "events_written"), 0);
    assert_eq!(num(&scan_store(&store), "events"), num(&g, "events"));
}

#[test]
fn compact_merges_partitions_and_keeps_every_answer() {
    let g = golden("invictus");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = shards(tmp.path());
    let store = tmp.path().join("lake");
    for dir in [&a, &b] {
        TestCommand::new(["scan", path_str(dir), "--store", path_str(&store), "--format", "json", "-q"])
            .run()
            .expect_code(0);
    }
    let before = TestCommand::new(["activity", path_str(&store), "--format", "json"]).run().expect_code(0).json();
    let parquet_files = |root: &Path| {
        let mut n = 0;
        let mut stack = vec![root.join("events")];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    n += 1;
                }
            }
        }
        n
    };
    assert_eq!(parquet_files(&store), 2, "one part per shard in the one partition");
    let stats = TestCommand::new(["compact", path_str(&store), "--format", "json"]).run().expect_code(0).json();
    assert_eq!(num(&stats, "partitions_compacted"), 1);
    assert_eq!(num(&stats, "parts_before"), 2);
    assert_eq!(num(&stats, "parts_after"), 1);
    assert_eq!(num(&stats, "rows"), num(&g, "events"));
    assert_eq!(parquet_files(&store), 1, "the replaced parts are deleted");
    let after = TestCommand::new(["activity", path_str(&store), "--format", "json"]).run().expect_code(0).json();
    assert_eq!(after, before);
    // A file changed after compaction is re-ingested; its old rows in the compacted part are hidden.
    let touched = fs::read_dir(&a).unwrap().next().unwrap().unwrap().path();
    let f = fs::File::options().write(true).open(&touched).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)).unwrap();
    drop(f);
    let re = TestCommand::new(["scan", path_str(&a), "--store", path_str(&store), "--format", "json", "-q"])
        .run()
        .expect_code(0)
        .json();
    assert_eq!(num(&re, "files_ingested"), 1);
    assert_eq!(num(&scan_store(&store), "events"), num(&g, "events"));
    let again = TestCommand::new(["compact", path_str(&store), "--format", "json"]).run().expect_code(0).json();
    assert!(num(&again, "rows_dropped_superseded") > 0);
    assert_eq!(num(&scan_store(&store), "events"), num(&g, "events"));
}
