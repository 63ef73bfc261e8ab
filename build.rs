//! Names the commit in `trailscope --version` (`0.1.0 (abc1234 2026-12-03)`), read from git when the
//! source is a checkout; a source without git says `unknown commit`. Lists the shipped Sigma rules
//! (`src/sigma/rules/**/*.yml`) and detect's built-in checks (`src/query/checks/*.yml`) for
//! `include_str!`, so the binary carries its default rule set and its checks.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Writes `$OUT_DIR/<out>`: `&[(relative path, text)]` of the `.yml`/`.yaml` files under `dir`, sorted
/// by path.
fn embed_rules(dir: &str, out_name: &str) {
    // At run time, not compile time: checkouts sharing a build cache share this script binary.
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        println!("cargo:rerun-if-changed={}", d.display());
        for e in std::fs::read_dir(&d).expect("the rules folder is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under the rules folder").to_string_lossy().replace('\\', "/");
        out.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", f.display().to_string()));
        println!("cargo:rerun-if-changed={}", f.display());
    }
    out.push_str("]\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(out_name);
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn main() {
    embed_rules("src/sigma/rules", "shipped_rules.rs");
    embed_rules("src/query/checks", "builtin_checks.rs");
    let commit = git(&["log", "-1", "--format=%h %cs"]).unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=TRAILSCOPE_COMMIT={commit}");
    // Build again when HEAD moves: HEAD itself, the branch it names, and packed refs.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", dir.join("packed-refs").display());
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(head).display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
