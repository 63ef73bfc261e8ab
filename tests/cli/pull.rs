//! `trailscope pull` against a real S3-compatible server on loopback: moto's S3 server, started by each
//! test through `tests/cli/s3_server.py` (which also runs a logging, fault-injecting proxy in front of
//! it) and stopped when the test ends, also on panic. The tests need python3 with `moto[server]`
//! (`.ci/run` installs it); without it they fail, loudly.
//!
//! Fixtures are the real CloudTrail files of testdata/s3, uploaded under the AWS key layout (and copied
//! to other accounts, regions and days for the filter tests). Expected event counts come from
//! testdata/golden/s3.json; which keys a filter must select is worked out by hand from the key dates and
//! `--late-delivery-hours` (24): a file delivered on day D may hold events from D minus the margin up to
//! the end of D (plus an hour of clock skew).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{golden, list, num, repo_root, text, Output, TestCommand};

const SIGNATURE: &str = "3a5b1c0e9f";
const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// A small real log file and the real digest of testdata/s3, copied to the keys the filter tests need.
const LOG: &str = "testdata/s3/AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/123837392027_CloudTrail_us-east-1_20230710T1150Z_1vnLavRRp0ek1mP4.json.gz";
const DIGEST: &str = "testdata/s3/AWSLogs/123837392027/CloudTrail-Digest/us-east-1/2023/07/10/123837392027_CloudTrail-Digest_us-east-1_trail_us-east-1_20230710T123000Z.json.gz";

/// moto + proxy, killed (and its stdin closed, which also ends it) when dropped.
struct S3Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// moto itself.
    moto: String,
    /// The proxy in front of moto: logs requests, injects faults.
    proxy: String,
    _logs: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl S3Server {
    fn start() -> S3Server {
        let script = repo_root().join("tests/cli/s3_server.py");
        let logs = tempfile::tempdir().unwrap();
        let stderr_path = logs.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        // The first line names the endpoints; wait for it, but not forever.
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            stdout
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_default();
        let hello: Option<Value> = serde_json::from_str(&line).ok();
        let Some(hello) = hello else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!(
                "the S3 test server did not start: the pull tests need python3 with moto[server] \
                 (python3 -m pip install 'moto[server]', as .ci/run does).\nfirst line: {line:?}\nstderr:\n{err}"
            );
        };
        let stdout = reader.join().unwrap();
        S3Server {
            child,
            stdin,
            stdout,
            moto: text(&hello, "moto").to_string(),
            proxy: text(&hello, "proxy").to_string(),
            _logs: logs,
            stderr_path,
        }
    }

    #[track_caller]
    fn cmd(&mut self, cmd: Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
            panic!("S3 test server answered {line:?} to {cmd} ({e}); stderr:\n{err}")
        });
        assert_eq!(answer["ok"], json!(true), "S3 test server: {cmd} -> {answer}");
        answer
    }

    /// Upload `items` (`{"key", "file" | "text", "metadata"}`) into `bucket` (created if new).
    fn put(&mut self, bucket: &str, items: Vec<Value>) {
        self.cmd(json!({"op": "put", "bucket": bucket, "items": items}));
    }

    /// What the proxy saw since the last reset.
    fn stats(&mut self) -> Value {
        self.cmd(json!({"op": "stats"}))
    }

    fn reset(&mut self) {
        self.cmd(json!({"op": "reset"}));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of every run: hermetic (no real AWS settings leak in), moto's test credentials.
struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { home: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str], with_env_keys: bool, extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trailscope"));
        c.args(args).current_dir(repo_root()).env_clear().env("HOME", self.home.path());
        c.env("AWS_SHARED_CREDENTIALS_FILE", self.home.path().join("credentials"));
        c.env("AWS_CONFIG_FILE", self.home.path().join("config"));
        c.env("AWS_EC2_METADATA_DISABLED", "true");
        if with_env_keys {
            c.env("AWS_ACCESS_KEY_ID", "test").env("AWS_SECRET_ACCESS_KEY", "test");
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c
    }
}

fn run(mut c: Command, cmdline: String) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
        cmdline,
    }
}

/// `trailscope pull URL DEST --endpoint-url ENDPOINT --format json --quiet ARGS...`.
fn pull_with(
    env: &Env,
    endpoint: &str,
    url: &str,
    dest: &Path,
    args: &[&str],
    env_keys: bool,
    extra: &[(&str, &str)],
) -> Output {
    let dest = dest.to_str().unwrap();
    let mut all = vec!["pull", url, dest, "--endpoint-url", endpoint, "--format", "json", "--quiet"];
    all.extend_from_slice(args);
    run(env.command(&all, env_keys, extra), format!("trailscope {}", all.join(" ")))
}

fn pull(env: &Env, endpoint: &str, url: &str, dest: &Path, args: &[&str]) -> Output {
    pull_with(env, endpoint, url, dest, args, true, &[])
}

/// Every file under `dir`, as `/`-separated paths relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The files of testdata/s3 that pull fetches (logs and digests: not the Insights file), relative.
fn testdata_keys() -> BTreeSet<String> {
    files_under(&repo_root().join("testdata/s3")).into_iter().filter(|k| !k.contains("CloudTrail-Insight")).collect()
}

/// Upload testdata/s3 into `bucket` under `prefix`, the digest with its signature metadata.
fn upload_testdata(server: &mut S3Server, bucket: &str, prefix: &str) {
    let root = repo_root().join("testdata/s3");
    let items = files_under(&root)
        .into_iter()
        .map(|rel| {
            let mut item = json!({"key": format!("{prefix}{rel}"), "file": root.join(&rel)});
            if rel.contains("CloudTrail-Digest") {
                item["metadata"] = json!({"signature": SIGNATURE, "signature-algorithm": SIGNATURE_ALGORITHM});
            }
            item
        })
        .collect();
    server.put(bucket, items);
}

/// Keys of the filter tests' bucket: two accounts and two regions over six days of March 2024, digests
/// on two of them, an organization trail's account, and three files around the new year.
fn multi_keys() -> Vec<(String, &'static str)> {
    let mut keys = Vec::new();
    for acct in ["111111111111", "222222222222"] {
        for region in ["us-east-1", "eu-west-1"] {
            for day in 8..=13 {
                let name = format!("{acct}_CloudTrail_{region}_202403{day:02}T0005Z_abc.json.gz");
                keys.push((format!("AWSLogs/{acct}/CloudTrail/{region}/2024/03/{day:02}/{name}"), LOG));
            }
            for day in [10, 12] {
                let name = format!("{acct}_CloudTrail-Digest_{region}_trail_us-east-1_202403{day:02}T010000Z.json.gz");
                keys.push((format!("AWSLogs/{acct}/CloudTrail-Digest/{region}/2024/03/{day:02}/{name}"), DIGEST));
            }
        }
    }
    for day in [10, 11] {
        let name = format!("333333333333_CloudTrail_us-east-1_202403{day}T0005Z_org.json.gz");
        keys.push((format!("AWSLogs/o-testorg123/333333333333/CloudTrail/us-east-1/2024/03/{day}/{name}"), LOG));
    }
    for date in ["2023/12/31", "2024/01/15", "2024/02/01"] {
        let name = format!("111111111111_CloudTrail_us-east-1_{}T0005Z_ny.json.gz", date.replace('/', ""));
        keys.push((format!("AWSLogs/111111111111/CloudTrail/us-east-1/{date}/{name}"), LOG));
    }
    keys
}

fn upload_multi(server: &mut S3Server, bucket: &str) {
    let items = multi_keys()
        .into_iter()
        .map(|(key, file)| {
            let mut item = json!({"key": key, "file": repo_root().join(file)});
            if key.contains("CloudTrail-Digest") {
                item["metadata"] = json!({"signature": SIGNATURE, "signature-algorithm": SIGNATURE_ALGORITHM});
            }
            item
        })
        .collect();
    server.put(bucket, items);
}

/// The pulled keys (files under DEST without pull's own state, temporary and metadata files).
fn pulled_keys(dest: &Path) -> BTreeSet<String> {
    files_under(dest)
        .into_iter()
        .filter(|k| !k.starts_with(".trailscope-pull/") && !k.ends_with(".metadata.json"))
        .collect()
}

/// The requests of `kind` ("list" or "get") the proxy saw.
fn requests<'a>(stats: &'a Value, kind: &str) -> Vec<&'a Value> {
    list(stats, "requests").iter().filter(|r| r["kind"] == json!(kind)).collect()
}

/// The prefixes of the LIST requests the proxy saw.
fn listed_prefixes(stats: &Value) -> Vec<String> {
    requests(stats, "list").iter().map(|r| r["prefix"].as_str().unwrap_or("").to_string()).collect()
}

#[track_caller]
fn assert_counts(s: &Value, listed: u64, downloaded: u64, present: u64, refused: u64, failed: u64) {
    let got = [
        num(s, "objects_listed"),
        num(s, "downloaded"),
        num(s, "already_present"),
        num(s, "refused"),
        num(s, "failed"),
    ];
    assert_eq!(
        got,
        [listed, downloaded, present, refused, failed],
        "listed/downloaded/present/refused/failed in {s:#}"
    );
}

#[test]
fn pull_of_the_whole_trail_scans_like_the_original_files() {
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "base/");
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let out = pull(&env, &server.proxy, "s3://trails/base", &dest, &[]);
    out.expect_code(0);
    let s = out.json();
    let keys = testdata_keys();
    let total: u64 =
        keys.iter().map(|k| std::fs::metadata(repo_root().join("testdata/s3").join(k)).unwrap().len()).sum();
    assert_counts(&s, keys.len() as u64, keys.len() as u64, 0, 0, 0);
    assert_eq!(num(&s, "bytes"), total);
    assert!(list(&s, "refused_keys").is_empty() && list(&s, "failed_keys").is_empty());

    // Keys map to DEST/<key> one to one, byte for byte.
    let want: BTreeSet<String> = keys.iter().map(|k| format!("base/{k}")).collect();
    assert_eq!(pulled_keys(&dest), want);
    for k in &keys {
        let got = std::fs::read(dest.join("base").join(k)).unwrap();
        assert_eq!(got, std::fs::read(repo_root().join("testdata/s3").join(k)).unwrap(), "{k}");
    }

    // The digest's signature metadata beside it, as `verify` reads it.
    let digest = keys.iter().find(|k| k.contains("CloudTrail-Digest")).unwrap();
    let side = dest.join("base").join(format!("{digest}{}", trailscope::layout::METADATA_SUFFIX));
    let meta: trailscope::layout::DigestMetadata =
        serde_json::from_str(&std::fs::read_to_string(&side).unwrap()).unwrap();
    assert_eq!(meta.signature.as_deref(), Some(SIGNATURE));
    assert_eq!(meta.signature_algorithm.as_deref(), Some(SIGNATURE_ALGORITHM));

    // Scanning the pulled tree counts what scanning testdata/s3 counts (scripts/golden.py).
    let g = golden("s3");
    let scan = TestCommand::new(["scan"]).arg(&dest).args(["--format", "json", "--quiet"]).run();
    scan.expect_code(0);
    let v = scan.json();
    for key in ["files", "files_failed", "records", "records_rejected", "events", "duplicates"] {
        assert_eq!(num(&v, key), num(&g, key), "{key}");
    }
    for key in ["first_event_time", "last_event_time"] {
        assert_eq!(text(&v, key), text(&g, key), "{key}");
    }
    for key in ["by_account", "by_region", "by_day"] {
        assert_eq!(v[key], g[key], "{key}");
    }
    // Without a window, each region is listed whole, once: no year, month or day listings.
    let stats = server.stats();
    let region_lists: Vec<String> = listed_prefixes(&stats).into_iter().filter(|p| p.contains("/us-east-1/")).collect();
    assert_eq!(region_lists.len(), 3, "{region_lists:?}");
    assert!(region_lists.iter().all(|p| p.ends_with("/us-east-1/")), "{region_lists:?}");
    assert_eq!(requests(&stats, "get").len(), keys.len());
}

#[test]
fn second_pull_fetches_nothing_and_changed_objects_are_fetched_again() {
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "");
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let n = testdata_keys().len() as u64;
    pull(&env, &server.proxy, "s3://trails", &dest, &[]).expect_code(0);

    server.reset();
    let out = pull(&env, &server.proxy, "s3://trails/", &dest, &[]);
    out.expect_code(0);
    let s = out.json();
    assert_counts(&s, n, 0, n, 0, 0);
    assert_eq!(num(&s, "bytes"), 0);
    assert!(requests(&server.stats(), "get").is_empty(), "nothing is fetched again");

    // Same size, other content: a different ETag, so fetched again; the rest stays.
    let key = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/123837392027_CloudTrail_us-east-1_20230710T1150Z_1vnLavRRp0ek1mP4.json.gz";
    let size = std::fs::metadata(repo_root().join("testdata/s3").join(key)).unwrap().len() as usize;
    let body: String = "z".repeat(size);
    server.put("trails", vec![json!({"key": key, "text": body})]);
    // And a local file cut short is fetched again too.
    let other = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/123837392027_CloudTrail_us-east-1_20230710T1200Z_x9kHmzMa7cx6l9wM.json.gz";
    std::fs::write(dest.join(other), b"partial").unwrap();
    server.reset();
    let out = pull(&env, &server.proxy, "s3://trails", &dest, &[]);
    out.expect_code(0);
    let s = out.json();
    assert_counts(&s, n, 2, n - 2, 0, 0);
    assert_eq!(std::fs::read_to_string(dest.join(key)).unwrap(), body);
    assert_eq!(
        std::fs::read(dest.join(other)).unwrap(),
        std::fs::read(repo_root().join("testdata/s3").join(other)).unwrap()
    );
    let mut fetched: Vec<String> = requests(&server.stats(), "get")
        .iter()
        .map(|r| text(r, "path").trim_start_matches("/trails/").to_string())
        .collect();
    fetched.sort();
    assert_eq!(fetched, vec![key.to_string(), other.to_string()]);

    // A digest whose metadata file went missing is fetched again, to restore it.
    let digest = testdata_keys().into_iter().find(|k| k.contains("CloudTrail-Digest")).unwrap();
    std::fs::remove_file(dest.join(format!("{digest}.metadata.json"))).unwrap();
    let s = pull(&env, &server.proxy, "s3://trails", &dest, &[]).json();
    assert_counts(&s, n, 1, n - 1, 0, 0);
    assert!(dest.join(format!("{digest}.metadata.json")).is_file());
    // No temporary file is left behind.
    assert!(files_under(&dest).iter().all(|f| !f.ends_with(".trailscope-tmp")), "{:?}", files_under(&dest));
}

#[test]
fn window_lists_only_the_day_prefixes_it_needs() {
    let mut server = S3Server::start();
    upload_multi(&mut server, "multi");
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let all: Vec<String> = multi_keys().into_iter().map(|(k, _)| k).collect();
    let on_days = |days: &[&str]| -> BTreeSet<String> {
        all.iter().filter(|k| days.iter().any(|d| k.contains(&format!("/{d}/")))).cloned().collect()
    };

    // [10 Mar 12:00, 11 Mar): files delivered on the 10th, and on the 11th (late deliveries, 24 h);
    // not the 9th (its files end before 10 Mar 01:00) nor the 12th (starts past --to plus the margin).
    let dest = tmp.path().join("a");
    let out = pull(
        &env,
        &server.proxy,
        "s3://multi",
        &dest,
        &["--from", "2024-03-10T12:00:00Z", "--to", "2024-03-11T00:00:00Z"],
    );
    out.expect_code(0);
    let want = on_days(&["2024/03/10", "2024/03/11"]);
    assert_eq!(pulled_keys(&dest), want);
    assert_counts(&out.json(), want.len() as u64, want.len() as u64, 0, 0, 0);
    let stats = server.stats();
    for p in listed_prefixes(&stats) {
        // At and below a region only the window's day prefixes are listed (no year or month walk).
        let depth = p.split('/').count() - usize::from(p.contains("/o-"));
        if depth >= 5 {
            assert!(p.ends_with("/2024/03/10/") || p.ends_with("/2024/03/11/"), "listed {p}");
        }
    }
    assert_eq!(requests(&stats, "get").len(), want.len());

    // --to only, an open window: walks years and months; 2023 lies wholly inside and is listed at once.
    server.reset();
    let dest = tmp.path().join("b");
    let out = pull(&env, &server.proxy, "s3://multi", &dest, &["--to", "2024-01-01"]);
    out.expect_code(0);
    assert_eq!(pulled_keys(&dest), on_days(&["2023/12/31"]));
    let stats = server.stats();
    let whole: Vec<&str> = requests(&stats, "list")
        .into_iter()
        .filter(|r| r["delimiter"].is_null())
        .map(|r| r["prefix"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(whole, ["AWSLogs/111111111111/CloudTrail/us-east-1/2023/"]);

    // --from only.
    let dest = tmp.path().join("c");
    let out = pull(&env, &server.proxy, "s3://multi", &dest, &["--from", "2024-03-12T12:00:00Z"]);
    out.expect_code(0);
    assert_eq!(pulled_keys(&dest), on_days(&["2024/03/12", "2024/03/13"]));

    // A window with no files.
    let dest = tmp.path().join("d");
    let out = pull(&env, &server.proxy, "s3://multi", &dest, &["--from", "2025-01-01", "--to", "2025-01-02"]);
    out.expect_code(0);
    assert_counts(&out.json(), 0, 0, 0, 0, 0);
}

#[test]
fn account_region_and_digest_flags_prune_prefixes() {
    let mut server = S3Server::start();
    upload_multi(&mut server, "multi");
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let all: Vec<String> = multi_keys().into_iter().map(|(k, _)| k).collect();

    let dest = tmp.path().join("a");
    let out = pull(
        &env,
        &server.proxy,
        "s3://multi",
        &dest,
        &["--account", "222222222222", "--region", "eu-west-1", "--no-digests"],
    );
    out.expect_code(0);
    let want: BTreeSet<String> =
        all.iter().filter(|k| k.starts_with("AWSLogs/222222222222/CloudTrail/eu-west-1/")).cloned().collect();
    assert_eq!(want.len(), 6);
    assert_eq!(pulled_keys(&dest), want);
    for p in listed_prefixes(&server.stats()) {
        assert!(!p.contains("111111111111") && !p.contains("333333333333"), "listed {p}");
        assert!(!p.contains("CloudTrail-Digest") && !p.contains("us-east-1"), "listed {p}");
    }

    // Digests come by default; an organization trail's accounts are found under o-<org>/.
    server.reset();
    let dest = tmp.path().join("b");
    let out = pull(
        &env,
        &server.proxy,
        "s3://multi",
        &dest,
        &["--account", "333333333333", "--account", "222222222222", "--region", "us-east-1"],
    );
    out.expect_code(0);
    let want: BTreeSet<String> = all
        .iter()
        .filter(|k| (k.contains("/222222222222/") || k.contains("/333333333333/")) && k.contains("/us-east-1/"))
        .cloned()
        .collect();
    assert_eq!(pulled_keys(&dest), want);
    assert!(want.iter().any(|k| k.contains("CloudTrail-Digest")) && want.iter().any(|k| k.contains("/o-testorg123/")));
    // The metadata of every digest is beside it.
    for k in want.iter().filter(|k| k.contains("CloudTrail-Digest")) {
        let side: Value =
            serde_json::from_str(&std::fs::read_to_string(dest.join(format!("{k}.metadata.json"))).unwrap()).unwrap();
        assert_eq!(side, json!({"signature": SIGNATURE, "signature-algorithm": SIGNATURE_ALGORITHM}));
    }

    // A prefix reaching into the layout starts the walk there.
    let dest = tmp.path().join("c");
    let out = pull(&env, &server.proxy, "s3://multi/AWSLogs/111111111111/CloudTrail/eu-west-1/2024/03/", &dest, &[]);
    out.expect_code(0);
    let want: BTreeSet<String> =
        all.iter().filter(|k| k.starts_with("AWSLogs/111111111111/CloudTrail/eu-west-1/2024/03/")).cloned().collect();
    assert_eq!(pulled_keys(&dest), want);
}

#[test]
fn keys_that_would_escape_dest_are_refused_and_nothing_is_written_outside() {
    let mut server = S3Server::start();
    let day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/10";
    let log = repo_root().join(LOG);
    let good = [format!("{day}/good.json.gz"), format!("{day}/sp ace+plus%25 é.json.gz")];
    let bad = [
        (format!("{day}/../../../../../../../../escape.json.gz"), "'..' path segment"),
        (format!("{day}/..\\..\\escape.json.gz"), "backslash"),
        (format!("{day}/x//y.json.gz"), "empty path segment"),
        (format!("{day}/ctl\u{1}.json.gz"), "control character"),
    ];
    let mut items: Vec<Value> = good.iter().map(|k| json!({"key": k, "file": log})).collect();
    items.extend(bad.iter().map(|(k, _)| json!({"key": k, "file": log})));
    // A folder named `..` right under AWSLogs/: refused as a prefix, never walked.
    items.push(json!({"key": "AWSLogs/../../escape2.json.gz", "file": log}));
    server.put("evil", items);

    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("deep").join("dest");
    let out = pull(&env, &server.proxy, "s3://evil", &dest, &[]);
    out.expect_code(2);
    let s = out.json();
    let refused = list(&s, "refused_keys");
    let refused_keys: Vec<&str> = refused.iter().map(|r| text(r, "key")).collect();
    for (k, why) in &bad {
        let r = refused.iter().find(|r| text(r, "key") == k).unwrap_or_else(|| panic!("{k:?} not refused: {s:#}"));
        assert!(text(r, "reason").contains(why), "{r}");
    }
    assert!(refused_keys.contains(&"AWSLogs/../"), "{refused_keys:?}");
    assert_eq!(num(&s, "downloaded"), 2);
    assert_eq!(num(&s, "failed"), 0);
    assert_eq!(num(&s, "refused"), refused.len() as u64);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    // Only DEST was written to, and only the good keys.
    assert_eq!(files_under(tmp.path()).into_iter().filter(|f| !f.starts_with("deep/dest/")).count(), 0);
    let want: BTreeSet<String> = good.iter().cloned().collect();
    assert_eq!(pulled_keys(&dest), want);

    // A symbolic link inside DEST pointing out of it is not followed.
    #[cfg(unix)]
    {
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let dest2 = tmp.path().join("dest2");
        std::fs::create_dir(&dest2).unwrap();
        std::os::unix::fs::symlink(&outside, dest2.join("AWSLogs")).unwrap();
        let out = pull(&env, &server.proxy, "s3://evil", &dest2, &[]);
        out.expect_code(2);
        let s = out.json();
        assert_eq!(num(&s, "failed"), 2, "{s:#}");
        assert!(text(&list(&s, "failed_keys")[0], "reason").contains("symbolic link"), "{s:#}");
        assert!(files_under(&outside).is_empty(), "{:?}", files_under(&outside));
    }
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "");
    // The first listings get 503 SlowDown and 500; object fetches get 503, 500 and a body cut off half way.
    server.cmd(json!({"op": "faults", "list": [503, 503, 500, 503], "get": [503, 500, "truncate", 503, "truncate"]}));
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let out = pull(&env, &server.proxy, "s3://trails", &dest, &["--jobs", "4"]);
    out.expect_code(0);
    let n = testdata_keys().len() as u64;
    assert_counts(&out.json(), n, n, 0, 0, 0);
    for k in testdata_keys() {
        assert_eq!(
            std::fs::read(dest.join(&k)).unwrap(),
            std::fs::read(repo_root().join("testdata/s3").join(&k)).unwrap()
        );
    }
    let stats = server.stats();
    assert_eq!(list(&stats, "injected").len(), 9, "{stats:#}");
    assert_eq!(stats["pending"], json!({"list": 0, "get": 0}));
}

#[test]
fn every_page_of_a_long_listing_is_read() {
    let mut server = S3Server::start();
    let day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/10";
    let n = 1005; // moto pages at 1000 keys
    let items = (0..n).map(|i| json!({"key": format!("{day}/f{i:05}.json.gz"), "text": format!("{i}")})).collect();
    server.put("many", items);
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let out = pull(&env, &server.proxy, "s3://many", &dest, &["--jobs", "32"]);
    out.expect_code(0);
    assert_counts(&out.json(), n, n, 0, 0, 0);
    assert_eq!(pulled_keys(&dest).len() as u64, n);
    let region_pages = listed_prefixes(&server.stats()).iter().filter(|p| p.ends_with("/us-east-1/")).count();
    assert_eq!(region_pages, 2);
}

#[test]
fn credentials_and_region_come_from_the_shared_files_and_profiles() {
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "");
    let env = Env::new();
    std::fs::write(
        env.home.path().join("credentials"),
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n\n[audit]\naws_access_key_id=AKIDAUDIT\naws_secret_access_key=s2\naws_session_token = tok\n",
    )
    .unwrap();
    std::fs::write(
        env.home.path().join("config"),
        "[default]\nregion = eu-west-3\n[profile audit]\nregion = eu-central-1\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let mut scopes = |args: &[&str], env_keys: bool, extra: &[(&str, &str)]| -> Value {
        server.reset();
        pull_with(&env, &server.proxy, "s3://trails", &dest, args, env_keys, extra).expect_code(0);
        server.stats()["scopes"].clone()
    };
    // --profile: its keys and region.
    assert_eq!(scopes(&["--profile", "audit"], false, &[]), json!(["AKIDAUDIT/eu-central-1"]));
    // --profile beats keys in the environment; --s3-region beats the profile's region.
    assert_eq!(
        scopes(&["--profile", "audit", "--s3-region", "ap-south-1"], true, &[]),
        json!(["AKIDAUDIT/ap-south-1"])
    );
    // AWS_PROFILE names the profile when no keys are in the environment.
    assert_eq!(scopes(&[], false, &[("AWS_PROFILE", "audit")]), json!(["AKIDAUDIT/eu-central-1"]));
    // Keys in the environment beat the default profile, whose region still applies; AWS_REGION beats it.
    assert_eq!(scopes(&[], true, &[]), json!(["test/eu-west-3"]));
    assert_eq!(scopes(&[], true, &[("AWS_REGION", "sa-east-1")]), json!(["test/sa-east-1"]));
    // No keys in the environment: the default profile.
    assert_eq!(scopes(&[], false, &[]), json!(["AKIDDEFAULT/eu-west-3"]));

    // A profile that does not exist is an error.
    let out = pull(&env, &server.proxy, "s3://trails", &dest, &["--profile", "nope"]);
    out.expect_code(1);
    assert!(out.stderr.contains("profile \"nope\" not found"), "{}", out.stderr);
}

/// Profiles whose credentials the AWS SDK's chain resolves (#15): `credential_process`, `role_arn`
/// with `source_profile` or `credential_source` (through moto's STS), web identity from the
/// environment; IAM Identity Center with no cached token fails plainly.
#[test]
fn credentials_come_from_the_sdk_chain() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "");
    let env = Env::new();
    let home = env.home.path();
    let runs = home.join("process-runs");
    let script = home.join("print-credentials");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \
             \"SecretAccessKey\": \"s\", \"SessionToken\": \"t\"}}'\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(home.join("credentials"), "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = s\n")
        .unwrap();
    std::fs::write(
        home.join("config"),
        format!(
            "[profile process]\ncredential_process = {}\nregion = eu-west-1\n\
             [profile responder]\nrole_arn = arn:aws:iam::123456789012:role/Responder\nsource_profile = base\nregion = eu-west-2\n\
             [profile from-env]\nrole_arn = arn:aws:iam::123456789012:role/FromEnv\ncredential_source = Environment\n\
             [profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Audit\n\
             [sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n",
            script.display()
        ),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let sts = server.proxy.clone();
    let mut run_with = |args: &[&str], env_keys: bool, extra: &[(&str, &str)]| -> (Value, Value) {
        server.reset();
        let _ = std::fs::remove_dir_all(&dest);
        let mut extra = extra.to_vec();
        extra.push(("AWS_ENDPOINT_URL_STS", &sts));
        pull_with(&env, &server.proxy, "s3://trails", &dest, args, env_keys, &extra).expect_code(0);
        let stats = server.stats();
        let requests = stats["requests"].as_array().unwrap().iter().filter(|r| r["kind"] != "other").count();
        assert!(requests > 2, "several S3 requests were signed: {stats:#}");
        (stats["scopes"].clone(), stats["sts"].clone())
    };

    // credential_process: its keys sign every request, and it runs once (the credential is reused).
    let (scopes, sts_calls) = run_with(&["--profile", "process"], true, &[]);
    assert_eq!(scopes, json!(["AKIDPROCESS/eu-west-1"]));
    assert_eq!(sts_calls, json!([]));
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1, "the process ran once");

    // role_arn + source_profile: one AssumeRole signed by the source profile's key; STS's temporary
    // key signs the S3 requests.
    let (scopes, sts_calls) = run_with(&["--profile", "responder"], true, &[]);
    assert_eq!(
        sts_calls,
        json!([{"action": "AssumeRole", "role": "arn:aws:iam::123456789012:role/Responder", "key": "AKIDBASE"}])
    );
    let scopes = scopes.as_array().unwrap();
    assert_eq!(scopes.len(), 1, "{scopes:?}");
    let key = scopes[0].as_str().unwrap();
    assert!(key.ends_with("/eu-west-2") && !key.starts_with("AKIDBASE") && !key.starts_with("test/"), "{key}");

    // role_arn + credential_source = Environment: the environment's keys sign the AssumeRole.
    let (_, sts_calls) = run_with(&["--profile", "from-env"], true, &[]);
    assert_eq!(
        sts_calls,
        json!([{"action": "AssumeRole", "role": "arn:aws:iam::123456789012:role/FromEnv", "key": "test"}])
    );

    // Web identity from the environment (as on EKS): AssumeRoleWithWebIdentity, unsigned.
    let token = home.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    let (scopes, sts_calls) = run_with(
        &[],
        false,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Pod"),
            ("AWS_ROLE_SESSION_NAME", "pod"),
        ],
    );
    assert_eq!(
        sts_calls,
        json!([{"action": "AssumeRoleWithWebIdentity", "role": "arn:aws:iam::123456789012:role/Pod", "key": null}])
    );
    assert_eq!(scopes.as_array().unwrap().len(), 1);

    // IAM Identity Center with no token in the SSO cache: a plain error that names the way out.
    let out = pull(&env, &server.proxy, "s3://trails", &dest, &["--profile", "sso"]);
    out.expect_code(1);
    assert!(out.stderr.contains("cannot get AWS credentials"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("sso"), "{}", out.stderr);
}

#[test]
fn fatal_errors_exit_1_and_the_table_summarizes() {
    let mut server = S3Server::start();
    upload_testdata(&mut server, "trails", "");
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    for url in ["trails", "http://trails/x", "s3://", "s3://trails/a/../b"] {
        let out = pull(&env, &server.proxy, url, &dest, &[]);
        out.expect_code(1);
        assert!(out.stderr.contains("bad S3 URL"), "{url}: {}", out.stderr);
    }
    let out = pull(&env, &server.moto, "s3://no-such-bucket", &dest, &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("cannot list") && out.stderr.contains("NoSuchBucket"), "{}", out.stderr);
    let out = pull(&env, &server.moto, "s3://trails", &dest, &["--from", "yesterday"]);
    out.expect_code(1);
    assert!(!dest.exists(), "nothing is written on a fatal error");

    // The human summary.
    let d = dest.to_str().unwrap();
    let args = ["pull", "s3://trails", d, "--endpoint-url", &server.moto, "--format", "table", "-q"];
    let out = run(env.command(&args, true, &[]), args.join(" "));
    out.expect_code(0);
    assert!(out.stdout.contains("objects listed") && out.stdout.contains("already present"), "{}", out.stdout);
}

/// `--store s3://...` (issue #7): two machines (two local mirrors) each ingest a shard into one S3
/// store; a third reads it and finds every event once; a re-run of a shard writes nothing.
#[test]
fn s3_store_takes_shards_from_two_machines_and_reads_back_complete() {
    let mut server = S3Server::start();
    server.put("lake-bucket", vec![json!({"key": "other/README", "text": "not the store"})]);
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = repo_root().join("testdata/invictus-ir/CloudTrail");
    let mut names: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    let (a, b) = (tmp.path().join("shard-a"), tmp.path().join("shard-b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for (i, n) in names.iter().enumerate() {
        std::fs::copy(src.join(n), if i < 20 { &a } else { &b }.join(n)).unwrap();
    }
    let endpoint = server.proxy.clone();
    let scan = |args: &[&str], cache: &str| {
        let cache = tmp.path().join(cache);
        let cache = cache.to_str().unwrap();
        let mut all = args.to_vec();
        all.extend(["--endpoint-url", &endpoint, "--s3-cache", cache, "--format", "json", "-q"]);
        let out = run(env.command(&all, true, &[]), format!("trailscope {}", all.join(" ")));
        out.expect_code(0);
        out.json()
    };
    let url = "s3://lake-bucket/lake";
    let first = scan(&["scan", a.to_str().unwrap(), "--store", url], "machine-1");
    assert_eq!(num(&first, "files_ingested"), 20);
    let second = scan(&["scan", b.to_str().unwrap(), "--store", url], "machine-2");
    assert_eq!(num(&second, "files_ingested"), 35);
    // Machine 2 saw machine 1's shard: its summary is of the whole store.
    let g = golden("invictus");
    assert_eq!(num(&second, "events"), num(&g, "events"));
    let read = scan(&["scan", url], "machine-3");
    assert_eq!(num(&read, "events"), num(&g, "events"));
    assert_eq!(read["by_day"], g["by_day"]);
    let again = scan(&["scan", a.to_str().unwrap(), "--store", url], "machine-1");
    assert_eq!(num(&again, "files_ingested"), 0);
    assert_eq!(num(&again, "events_written"), 0);
    assert_eq!(num(&scan(&["scan", url], "machine-4"), "events"), num(&g, "events"));
}
