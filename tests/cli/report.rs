//! `trailscope report`: the access-review pack on the shipped data. Its numbers must be the individual
//! commands' numbers on the same input (each is run here with `--format json` and compared with the
//! report's JSON); the HTML must hold every section with a chart and load nothing, checked as text and
//! in headless Chromium. Also the commands the report relies on: `activity --by group` and the
//! `detect` checks added with it (MFA posture, SSM sessions, allowed networks and hours).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{list, num, text, TestCommand};

const INPUTS: [&str; 3] = ["testdata/invictus-ir", "testdata/stratus-red-team", "testdata/awsdocs"];
const AUTHZ: &str = "testdata/iam/invictus-authz.json";
const CREDS: &str = "testdata/iam/credential-report.csv";
const AS_OF: &str = "2023-07-11T00:00:00Z";
const CIDR: &str = "10.0.0.0/8";
const HOURS: &str = "Mon-Fri 07:00-19:00 +02:00";
/// The sections of the report, in order: the HTML's `<section id>`s and the JSON's keys.
const SECTIONS: [&str; 10] =
    ["actions", "scope", "root", "principals", "mfa", "failures", "unused", "credentials", "sessions", "conditions"];
/// The `detect` checks whose findings are action items (README: trailscope report, Action items).
const ACTION_CHECKS: [&str; 5] =
    ["TS-TRAIL-TAMPER", "TS-ROOT-ACCESS-KEY", "TS-CRED-FOR-OTHER-USER", "TS-DENIED-THEN-SUCCEEDED", "CIS-4.7"];

/// The awsdocs examples hold one record without eventTime: every command on them exits 2.
const BAD_INPUT: i32 = 2;

fn with_inputs(first: &[&str]) -> Vec<String> {
    first.iter().chain(INPUTS.iter()).map(|s| s.to_string()).collect()
}

fn command_json(args: &[&str]) -> Value {
    let mut a = with_inputs(args);
    a.extend(["--format", "json", "-q"].map(String::from));
    TestCommand::new(a).run().expect_code(BAD_INPUT).json()
}

fn full_report_args(html: Option<&Path>) -> Vec<String> {
    let mut a = with_inputs(&["report"]);
    a.extend(
        [
            "--iam",
            AUTHZ,
            "--credential-report",
            CREDS,
            "--as-of",
            AS_OF,
            "--allowed-cidr",
            CIDR,
            "--allowed-hours",
            HOURS,
            "--format",
            "json",
            "-q",
        ]
        .map(String::from),
    );
    if let Some(p) = html {
        a.push("--html".into());
        a.push(p.display().to_string());
    }
    a
}

fn full_report(html: Option<&Path>) -> Value {
    TestCommand::new(full_report_args(html)).run().expect_code(BAD_INPUT).json()
}

fn findings_per_check(findings: &Value) -> BTreeMap<String, u64> {
    let mut n = BTreeMap::new();
    for f in findings.as_array().expect("findings") {
        *n.entry(text(f, "check_id").to_string()).or_default() += 1;
    }
    n
}

fn sum(rows: &[Value], key: &str) -> u64 {
    rows.iter().map(|r| num(r, key)).sum()
}

#[test]
fn report_numbers_are_the_commands_numbers() {
    let r = full_report(None);

    // Scope: `scan`'s accounting.
    let scan = command_json(&["scan"]);
    let scope = &r["scope"];
    for key in [
        "files",
        "files_skipped",
        "files_failed",
        "records",
        "records_rejected",
        "records_without_event_id",
        "events",
        "duplicates",
        "first_event_time",
        "last_event_time",
    ] {
        assert_eq!(scope["summary"][key], scan[key], "scope {key}");
    }
    assert_eq!(scope["by_account"], scan["by_account"]);
    assert_eq!(scope["by_region"], scan["by_region"]);
    assert_eq!(num(&scope["summary"], "accounts"), list(&scan, "by_account").len() as u64);
    let per_bucket: u64 = list(&scope["over_time"], "rows").iter().map(|b| num(b, "events")).sum();
    assert_eq!(per_bucket, num(&scan, "events"), "the events-over-time chart counts every event once");

    // Root: `root --summary` and `root`.
    assert_eq!(r["root"]["summary"], command_json(&["root", "--summary"])[0]);
    assert_eq!(r["root"]["events"], command_json(&["root"]));

    // Principals: `activity`, `activity --by group`, dormant = `unused` rows with no events.
    assert_eq!(r["principals"]["activity"], command_json(&["activity"]));
    let groups = command_json(&["activity", "--by", "group", "--iam", AUTHZ]);
    assert_eq!(r["principals"]["groups"], groups["groups"]);
    assert_eq!(r["principals"]["group_members"], groups["members"]);
    assert_eq!(r["principals"]["group_by_action"], groups["by_action"]);

    // Failures: `failures` and `failures --denied`.
    let failures = command_json(&["failures"]);
    assert_eq!(r["failures"]["failures"], failures["failures"]);
    assert_eq!(r["failures"]["console_sign_in_failures"], failures["console_sign_in_failures"]);
    assert_eq!(r["failures"]["denied"], command_json(&["failures", "--denied"])["failures"]);

    // Unused permissions and credentials: `unused --credential-report`, `unused --policy`.
    let unused = command_json(&["unused", "--iam", AUTHZ, "--credential-report", CREDS, "--as-of", AS_OF]);
    assert_eq!(r["unused"]["principals"], unused["principals"]);
    assert_eq!(r["credentials"]["access_keys"], unused["access_keys"]);
    let dormant: Vec<&Value> = list(&unused, "principals").iter().filter(|p| num(p, "events") == 0).collect();
    assert_eq!(list(&r["principals"], "dormant").iter().collect::<Vec<_>>(), dormant);
    for p in list(&r["unused"], "policies") {
        let want = command_json(&["unused", "--iam", AUTHZ, "--policy", text(p, "principal")]);
        assert_eq!(p["policy"], want, "least-privilege policy of {}", p["principal"]);
    }

    // Checks: `detect` with the same parameters, per check; the MFA, sessions and conditions
    // sections are those findings per principal.
    let detect = findings_per_check(&command_json(&["detect", "--allowed-cidr", CIDR, "--allowed-hours", HOURS]));
    for c in list(&r["root"], "checks") {
        assert_eq!(num(c, "findings"), detect.get(text(c, "check_id")).copied().unwrap_or(0), "{}", c["check_id"]);
        assert_eq!(c["skipped"], false);
    }
    let mut args = vec!["detect"];
    for c in ACTION_CHECKS {
        args.extend(["--check", c]);
    }
    assert_eq!(r["root"]["findings"], command_json(&args), "the findings to act on are detect's");
    let count = |id: &str| detect.get(id).copied().unwrap_or(0);
    let mfa = list(&r["mfa"], "principals");
    assert_eq!(sum(mfa, "console_sign_ins_without_mfa"), count("CIS-4.2"));
    assert_eq!(sum(mfa, "calls_without_mfa"), count("TS-NO-MFA-SESSION"));
    assert_eq!(list(&r["mfa"], "console_sign_ins").len() as u64, count("CIS-4.2"));
    assert_eq!(num(&r["sessions"], "events"), count("TS-SSM-SESSION"));
    assert_eq!(sum(list(&r["sessions"], "by_target"), "events"), count("TS-SSM-SESSION"));
    let cond = list(&r["conditions"], "principals");
    assert_eq!(sum(cond, "outside_network"), count("TS-OUTSIDE-NETWORK"));
    assert_eq!(sum(cond, "outside_hours"), count("TS-OUTSIDE-HOURS"));
}

/// The action items of a kind: (who, count) sorted, and each item's severity.
fn items_of<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    list(&r["actions"], "items").iter().filter(|i| i["kind"] == kind).collect()
}

fn who_count(items: &[&Value]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = items.iter().map(|i| (text(i, "who").to_string(), num(i, "count"))).collect();
    v.sort();
    v
}

/// The "Action items" section: each kind of item recomputed from the other commands' JSON on the same
/// input, not from the report; ranked by severity; the JSON's counts per severity are its items'.
#[test]
fn action_items_are_the_commands_findings() {
    let r = full_report(None);
    let items = list(&r["actions"], "items");
    assert!(!items.is_empty());

    // Ranked: critical, high, medium, low; each severity's count is its items'.
    let rank = |s: &str| ["critical", "high", "medium", "low"].iter().position(|x| *x == s).expect("a severity");
    let ranks: Vec<usize> = items.iter().map(|i| rank(text(i, "severity"))).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "not ranked by severity: {ranks:?}");
    for sev in ["critical", "high", "medium", "low"] {
        let n = items.iter().filter(|i| i["severity"] == sev).count() as u64;
        assert_eq!(num(&r["actions"]["counts"], sev), n, "{sev}");
    }
    for i in items {
        for key in ["what", "who", "unit", "section", "anchor"] {
            assert!(!text(i, key).is_empty(), "{key} of {i}");
        }
        assert!(num(i, "count") > 0, "{i}");
        assert!(SECTIONS.contains(&text(i, "section")), "{i}");
    }

    // Root sign-ins without MFA: `root --summary`'s count; who: the accounts of `root`'s successful
    // console sign-ins without MFA.
    let summary = &command_json(&["root", "--summary"])[0];
    let root_rows = command_json(&["root"]);
    let mut accounts: Vec<&str> = root_rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_name"] == "ConsoleLogin" && e["console_login"] == "Success" && e["mfa_used"] != "Yes")
        .map(|e| text(e, "recipient_account_id"))
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let root_mfa = items_of(&r, "root_sign_in_without_mfa");
    assert_eq!(num(summary, "console_login_success_without_mfa"), 1, "the awsdocs root sign-in without MFA");
    assert_eq!(
        who_count(&root_mfa),
        [(format!("root of {}", accounts.join(", ")), num(summary, "console_login_success_without_mfa"))]
    );
    assert_eq!(text(root_mfa[0], "severity"), "critical");
    assert_eq!(who_count(&items_of(&r, "root_used"))[0].1, num(summary, "events"));
    assert_eq!(text(&items[0], "kind"), "root_sign_in_without_mfa", "the most severe item comes first");

    // Trail tampering and the other findings: `detect`'s rows of those checks, counted per check,
    // principal and severity.
    let detect = command_json(&["detect", "--allowed-cidr", CIDR, "--allowed-hours", HOURS]);
    let mut want: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for f in detect.as_array().unwrap().iter().filter(|f| ACTION_CHECKS.contains(&text(f, "check_id"))) {
        let key = (text(f, "check_id").into(), text(f, "principal").into(), text(f, "severity").into());
        *want.entry(key).or_default() += 1;
    }
    let mut got: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for i in items_of(&r, "detect_finding") {
        let check = text(i, "what").split(':').next().unwrap().to_string();
        *got.entry((check, text(i, "who").into(), text(i, "severity").into())).or_default() += num(i, "count");
        assert_eq!(text(i, "anchor"), "root-findings");
    }
    assert_eq!(got, want);
    assert!(want.keys().any(|(c, _, s)| c == "TS-TRAIL-TAMPER" && s == "critical"), "tampering is in the data");

    // IAM users' console sign-ins without MFA: `detect --check CIS-4.2` per principal.
    let mut cis42: BTreeMap<String, u64> = BTreeMap::new();
    for f in detect.as_array().unwrap().iter().filter(|f| f["check_id"] == "CIS-4.2") {
        *cis42.entry(text(f, "principal").into()).or_default() += 1;
    }
    assert_eq!(who_count(&items_of(&r, "console_sign_in_without_mfa")), cis42.into_iter().collect::<Vec<_>>());

    // Never-used credentials and risky unused grants: `unused --credential-report`.
    let unused = command_json(&["unused", "--iam", AUTHZ, "--credential-report", CREDS, "--as-of", AS_OF]);
    let mut never: BTreeMap<String, u64> = BTreeMap::new();
    for k in list(&unused, "access_keys").iter().filter(|k| k["finding"] == "active, never used") {
        *never.entry(text(k, "user").into()).or_default() += 1;
    }
    assert_eq!(never.keys().collect::<Vec<_>>(), ["carol"], "carol's first key (credential-report.csv)");
    assert_eq!(who_count(&items_of(&r, "never_used_credentials")), never.into_iter().collect::<Vec<_>>());
    let escalate: Vec<(String, u64)> = list(&unused, "principals")
        .iter()
        .filter_map(|p| {
            let listed = p["remove_first"].as_str()?.strip_prefix("can escalate, never used: ")?;
            Some((text(p, "principal").to_string(), listed.split(", ").count() as u64))
        })
        .collect();
    let mut escalate_sorted = escalate.clone();
    escalate_sorted.sort();
    assert!(escalate.iter().any(|(p, _)| p.ends_with("user/bert-jan")));
    let can_escalate = items_of(&r, "can_escalate_never_used");
    assert_eq!(who_count(&can_escalate), escalate_sorted);
    assert!(can_escalate.iter().all(|i| i["severity"] == "high" && i["anchor"] == "unused"));
    assert!(can_escalate.iter().all(|i| text(i, "what").contains("remove first")));

    // Dormant principals: `unused` rows without events, counted by their granted actions.
    let dormant: Vec<(String, u64)> = {
        let mut v: Vec<(String, u64)> = list(&unused, "principals")
            .iter()
            .filter(|p| num(p, "events") == 0)
            .map(|p| (text(p, "principal").to_string(), num(p, "granted")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(who_count(&items_of(&r, "dormant_principal")), dormant);
}

/// A password enabled and never used (the credential report says `no_information`) is a never-used
/// credential, with a never-used access key of the same user: one item counting both.
#[test]
fn never_used_password_is_an_action_item() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("creds.csv");
    let header = std::fs::read_to_string(crate::repo_root().join(CREDS)).unwrap();
    let header = header.lines().next().unwrap();
    std::fs::write(
        &csv,
        format!(
            "{header}\n\
             dave,arn:aws:iam::123837392027:user/dave,2023-01-01T10:00:00+00:00,true,no_information,2023-06-01T10:00:00+00:00,N/A,true,true,2023-06-01T10:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             erin,arn:aws:iam::123837392027:user/erin,2023-01-01T10:00:00+00:00,true,2023-07-01T10:00:00+00:00,2023-06-01T10:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        ),
    )
    .unwrap();
    let r = TestCommand::new([
        "report",
        "testdata/invictus-ir",
        "--credential-report",
        csv.to_str().unwrap(),
        "--as-of",
        AS_OF,
        "--format",
        "json",
        "-q",
    ])
    .run()
    .expect_code(0)
    .json();
    // dave: password never used (no_information) and access key 1 active with no last use: 2.
    assert_eq!(who_count(&items_of(&r, "never_used_credentials")), [("dave".to_string(), 2)]);
    let users = list(&r["credentials"], "users");
    assert_eq!(users[0]["password_never_used"], true);
    assert_eq!(users[1]["password_never_used"], false);
    assert_eq!(num(&r["credentials"]["summary"], "passwords_never_used"), 1);
}

#[test]
fn report_facts_checked_by_hand() {
    let r = full_report(None);
    // The three SSM sessions of Stratus Red Team's ssm-start-session detonation: one target each, each
    // started and terminated by christophe in account 294599468799.
    let sessions = list(&r["sessions"], "sessions");
    assert_eq!(sessions.len(), 3);
    for s in sessions {
        assert_eq!(text(s, "principal"), "arn:aws:iam::294599468799:user/christophe");
        assert!(text(s, "target").starts_with("i-"), "{s}");
        assert!(s["terminated"].is_string(), "{s}");
    }
    // The snapshot's auditors group has one member, benjamin, with his 105 events (README: activity).
    let groups = list(&r["principals"], "groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (text(&groups[0], "group"), num(&groups[0], "members"), num(&groups[0], "events")),
        ("auditors", 1, 105)
    );
    // Dormant: carol and unused-deploy-role (tests/cli/unused.rs).
    let mut dormant: Vec<&str> = list(&r["principals"], "dormant").iter().map(|p| text(p, "name")).collect();
    dormant.sort_unstable();
    assert_eq!(dormant, ["carol", "unused-deploy-role"]);
    // The credential report: carol has two active keys; bert-jan and carol have no MFA; as of
    // 2023-07-11, benjamin's password (changed 2023-07-01) is 9 days old.
    let users = list(&r["credentials"], "users");
    let user = |name: &str| users.iter().find(|u| u["user"] == name).unwrap_or_else(|| panic!("no user {name}"));
    assert_eq!(num(user("carol"), "active_keys"), 2);
    assert!(text(user("carol"), "findings").contains("two active access keys"));
    assert_eq!(num(user("benjamin"), "password_age_days"), 9);
    let summary = &r["credentials"]["summary"];
    assert_eq!(num(summary, "users_with_two_keys"), 1);
    assert_eq!(num(summary, "users_without_mfa"), 2);
    assert_eq!(num(summary, "passwords_older_than_90_days"), 0);
    // Benjamin only called from 10.x addresses and AWS services (README: activity --section by_source_ip).
    let outside = list(&r["conditions"], "principals");
    assert!(!outside.iter().any(|p| p["principal"].as_str().is_some_and(|p| p.ends_with("user/benjamin"))));
}

/// Every `src="..."` / `href="..."` value of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=", "href=", "SRC=", "HREF="] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            let quote = rest.chars().next().unwrap_or(' ');
            let value: String = if quote == '"' || quote == '\'' {
                rest[1..].chars().take_while(|c| *c != quote).collect()
            } else {
                rest.chars().take_while(|c| !c.is_whitespace() && *c != '>').collect()
            };
            out.push(value);
        }
    }
    out
}

/// Each section's markup, from `<section id="X"` to its `</section>`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<section id=\"{id}\"")).unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").unwrap_or_else(|| panic!("section {id} not closed"));
    &html[start..start + end]
}

/// Every `#anchor` link of `html` names an element id of the page.
fn assert_anchors_resolve(html: &str) {
    for l in links(html) {
        if let Some(id) = l.strip_prefix('#') {
            assert!(html.contains(&format!(" id=\"{id}\"")), "the link #{id} names no element of the page");
        }
    }
}

fn assert_self_contained(html: &str) {
    for id in SECTIONS {
        assert!(section(html, id).contains("<svg"), "section {id} has no chart");
    }
    assert_anchors_resolve(html);
    for l in links(html) {
        assert!(l.starts_with('#'), "a link or resource outside the page: {l:?}");
    }
    // Text from the logs may quote URLs (error messages do); the style sheet loads none.
    let style = &html[html.find("<style>").expect("style")..html.find("</style>").expect("style end")];
    for needle in ["@import", "url("] {
        assert!(!style.contains(needle), "the style sheet has {needle}");
    }
    assert!(html.contains("Content-Security-Policy"), "the page forbids fetches");
    assert_eq!(html.matches("<script").count(), 1, "only the report's own script");
}

#[test]
fn html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("report.html");
    let r = full_report(Some(&html_path));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    // Numbers of the JSON appear in the HTML: the scope's events, bert-jan's unused count.
    assert!(section(&html, "scope").contains(&format!("<b>{}</b>", num(&r["scope"]["summary"], "events"))));
    let bert = list(&r["unused"], "principals").iter().find(|p| p["name"] == "bert-jan").unwrap();
    assert!(section(&html, "unused").contains(&format!("<td class=\"n\">{}</td>", num(bert, "unused"))));
    // Each principal's least-privilege policy is embedded, linked and copyable.
    for (i, p) in list(&r["unused"], "policies").iter().enumerate() {
        assert!(html.contains(&format!("href=\"#policy-{i}\"")), "{}", p["principal"]);
        assert!(html.contains(&format!("<details id=\"policy-{i}\">")));
        assert!(html.contains(&format!("data-copy=\"policy-{i}-text\"")));
    }
    // Print: page breaks between sections, no dark background.
    assert!(html.contains("@media print") && html.contains("break-before:page"));
}

#[test]
fn html_report_without_snapshot_or_parameters_still_has_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("r.html");
    let out =
        TestCommand::new(["report", "testdata/stratus-red-team", "--html", html_path.to_str().unwrap(), "-q"]).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "without --format json nothing goes to stdout");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_self_contained(&html);
    assert!(section(&html, "unused").contains("--iam"));
    assert!(section(&html, "credentials").contains("--credential-report"));
    assert!(section(&html, "conditions").contains("--allowed-cidr"));
    let r =
        TestCommand::new(["report", "testdata/stratus-red-team", "--format", "json", "-q"]).run().expect_code(0).json();
    assert!(r["unused"].is_null() && r["credentials"].is_null());
    let skipped: Vec<&str> =
        list(&r["root"], "checks").iter().filter(|c| c["skipped"] == true).map(|c| text(c, "check_id")).collect();
    assert_eq!(skipped, ["TS-OUTSIDE-NETWORK", "TS-OUTSIDE-HOURS"]);
}

#[test]
fn report_checks_the_integrity_of_digested_inputs() {
    let r = TestCommand::new(["report", "testdata/s3", "--format", "json", "-q"]).run().expect_code(0).json();
    let integrity = list(&r["scope"], "integrity");
    assert_eq!(integrity.len(), 1);
    let verify = TestCommand::new(["verify", "testdata/s3", "--format", "json"]).run().json();
    for key in ["verdict", "digests", "log_files", "log_files_verified", "problems"] {
        assert_eq!(integrity[0][key], verify[key], "{key}");
    }
    assert_eq!(text(&integrity[0], "input"), "testdata/s3");
    // An integrity problem is a critical action item, counting `verify`'s problems.
    let items: Vec<&Value> = list(&r["actions"], "items").iter().filter(|i| i["kind"] == "log_integrity").collect();
    assert_eq!(who_count(&items), [("testdata/s3".to_string(), num(&verify, "problems"))]);
    assert!(num(&verify, "problems") > 0 && items[0]["severity"] == "critical" && items[0]["anchor"] == "integrity");
}

#[test]
fn report_needs_somewhere_to_write() {
    let out = TestCommand::new(["report", "testdata/awsdocs", "-q"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("--html"), "{}", out.stderr);
}

#[test]
fn activity_by_group_needs_the_snapshot() {
    let out = TestCommand::new(["activity", "testdata/invictus-ir", "--by", "group"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("--iam"), "{}", out.stderr);
}

fn detect(input: &str, extra: &[&str]) -> (BTreeMap<String, u64>, String) {
    let mut a = vec!["detect", input, "--format", "json", "-q"];
    a.extend_from_slice(extra);
    let out = TestCommand::new(a).run();
    out.expect_code(0);
    (findings_per_check(&out.json()), out.stderr)
}

#[test]
fn detect_parameterized_checks_are_skipped_without_their_flags() {
    let (n, stderr) = detect("testdata/invictus-ir", &["--check", "TS-OUTSIDE-NETWORK", "--check", "ts-outside-hours"]);
    assert!(n.is_empty(), "{n:?}");
    assert!(stderr.contains("TS-OUTSIDE-NETWORK skipped: it needs --allowed-cidr"), "{stderr}");
    assert!(stderr.contains("TS-OUTSIDE-HOURS skipped: it needs --allowed-hours"), "{stderr}");
    let out =
        TestCommand::new(["detect", "testdata/invictus-ir", "--allowed-hours", "Mon-Fri 07:00-19:00 Europe/Paris"])
            .run();
    out.expect_code(1);
    assert!(out.stderr.contains("+02:00"), "zone names are refused with the fixed-offset hint: {}", out.stderr);
}

#[test]
fn detect_allowed_hours_and_networks() {
    // Every Invictus IR event is on Monday 2023-07-10 between 11:42Z and 12:38Z.
    let hours = |w: &str| detect("testdata/invictus-ir", &["--check", "TS-OUTSIDE-HOURS", "--allowed-hours", w]).0;
    assert!(hours("Mon 00:00-24:00").is_empty());
    assert!(hours("Mon-Fri 13:00-15:00 +02:00").is_empty(), "11:42Z-12:38Z is 13:42-14:38 at +02:00");
    let all = hours("Tue-Sun 00:00-24:00")["TS-OUTSIDE-HOURS"];
    assert!(all > 0);
    // At +14:00 the same events fall on Tuesday morning: all outside a Monday window.
    assert_eq!(hours("Mon 00:00-24:00 +14:00")["TS-OUTSIDE-HOURS"], all);
    // Two windows: either one allows.
    assert!(hours("Tue 00:00-24:00").contains_key("TS-OUTSIDE-HOURS"));
    assert!(detect(
        "testdata/invictus-ir",
        &["--check", "TS-OUTSIDE-HOURS", "--allowed-hours", "Tue 00:00-24:00", "--allowed-hours", "Mon 11:00-13:00"]
    )
    .0
    .is_empty());

    let net = |cidrs: &[&str]| {
        let mut a = vec!["--check", "TS-OUTSIDE-NETWORK"];
        for c in cidrs {
            a.extend(["--allowed-cidr", c]);
        }
        detect("testdata/invictus-ir", &a).0
    };
    assert!(net(&["0.0.0.0/0", "::/0"]).is_empty());
    // Every call made from an IP address is outside a network no address is in; the same count as
    // the hours check's "never" window (both leave out calls made by services).
    assert_eq!(net(&["192.0.2.1/32"])["TS-OUTSIDE-NETWORK"], all - non_ip_calls());
}

/// Own calls (no invokedBy, not a service event) of the Invictus IR data whose sourceIPAddress is not
/// an IP address ("AWS Internal", a service name), counted from the files directly.
fn non_ip_calls() -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir(crate::repo_root().join("testdata/invictus-ir/CloudTrail")).unwrap() {
        let path = entry.unwrap().path();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for r in doc["Records"].as_array().into_iter().flatten() {
            let own = r["userIdentity"].get("invokedBy").is_none() && r["eventType"] != "AwsServiceEvent";
            let ip = r["sourceIPAddress"].as_str().unwrap_or("");
            if own && ip.parse::<std::net::IpAddr>().is_err() {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn detect_mfa_and_ssm_checks() {
    // Stratus Red Team's ssm-start-session detonation: three sessions started and terminated.
    let (n, _) = detect("testdata/stratus-red-team", &["--check", "TS-SSM-SESSION"]);
    assert_eq!(n.get("TS-SSM-SESSION"), Some(&6));
    // awsdocs: the one IAMUser event whose session says mfaAuthenticated false (Alice's, 2014).
    let rows =
        TestCommand::new(["detect", "testdata/awsdocs", "--check", "TS-NO-MFA-SESSION", "--format", "json", "-q"])
            .run()
            .expect_code(BAD_INPUT)
            .json();
    let principals: Vec<&str> = rows.as_array().unwrap().iter().map(|r| text(r, "principal")).collect();
    assert!(!principals.is_empty() && principals.iter().all(|p| p.ends_with("user/Alice")), "{principals:?}");
}

/// The headless Chromium of the machine (Debian's `chromium`); CI installs it, so its absence fails.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium is not installed: `apt-get install -y chromium` (CI installs it; or set CHROMIUM=/path)");
}

fn run_chromium(profile: &Path, args: &[String]) -> std::process::Output {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args);
    cmd.output().expect("running chromium")
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("report.html");
    let r = full_report(Some(&html_path));
    let url = format!("file://{}", html_path.display());

    // The DOM after the page ran: every section with its chart, nothing pointing outside the page.
    let out = run_chromium(&dir.path().join("profile-dom"), &["--dump-dom".into(), url.clone()]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in SECTIONS {
        let s = section(&dom, id);
        assert!(s.contains("<svg"), "section {id} rendered no chart");
        assert!(s.contains("<h2>"), "section {id} has no title");
    }
    for l in links(&dom) {
        assert!(l.starts_with('#'), "the rendered page points outside itself: {l:?}");
    }
    // The action items come first, each linking to an element of the rendered page.
    let first = &dom[dom.find("<section").expect("a section")..];
    assert!(first.starts_with("<section id=\"actions\""), "the first section is not the action items");
    let actions = section(&dom, "actions");
    let evidence = links(actions);
    assert_eq!(evidence.len(), list(&r["actions"], "items").len(), "one evidence link per action item");
    for l in evidence {
        let id = l.strip_prefix('#').expect("an anchor");
        assert!(dom.contains(&format!(" id=\"{id}\"")), "action item link #{id} resolves to nothing");
    }
    assert_anchors_resolve(&dom);

    // With network logging on: every request the browser made is for the file itself or one of
    // Chromium's own background services (time, updates, accounts: Google hosts, which the page
    // names nowhere); and no fetch was attempted and refused by the page's Content-Security-Policy.
    let out = run_chromium(
        &dir.path().join("profile-net"),
        &["--enable-logging=stderr".into(), "--v=1".into(), "--dump-dom".into(), url.clone()],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let browser_own = |host: &str| {
        ["google.com", "googleapis.com", "gstatic.com", "gvt1.com", "googleusercontent.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    };
    let mut requests = 0;
    for line in log.lines().filter(|l| l.contains("NotifyBeforeURLRequest")) {
        let url = line.rsplit(' ').next().unwrap_or("");
        requests += 1;
        if url.starts_with("file://") {
            continue;
        }
        let host = url.split("://").nth(1).and_then(|r| r.split(['/', ':', '?']).next()).unwrap_or("");
        assert!(browser_own(host), "a request left the page: {url}");
        assert!(!dom.contains(host), "the page names the host {host} it requested");
    }
    assert!(requests > 0 || !log.contains("NetworkDelegate"), "the network log was read");
    assert!(!log.contains("Refused to load"), "the page tried to load something: {log}");

    // A screenshot: the page paints.
    let png = dir.path().join("report.png");
    let out = run_chromium(
        &dir.path().join("profile-shot"),
        &[format!("--screenshot={}", png.display()), "--window-size=1280,4000".into(), "--hide-scrollbars".into(), url],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000, "screenshot of {} bytes", bytes.len());
}

/// `--max-rows` cuts the lists of events and findings to their first rows, gives their totals, and
/// changes nothing else: the action items count every finding and name every root account, not only
/// the rows listed.
#[test]
fn report_lists_are_cut_at_max_rows_and_their_totals_stay() {
    let mut full = full_report(None);
    let mut args = full_report_args(None);
    args.extend(["--max-rows", "1"].map(String::from));
    let mut cut = TestCommand::new(args).run().expect_code(BAD_INPUT).json();
    let mut lists_cut = 0;
    for (section, list, total) in [
        ("root", "events", "events_total"),
        ("root", "findings", "findings_total"),
        ("mfa", "console_sign_ins", "console_sign_ins_total"),
        ("failures", "console_sign_in_failures", "console_sign_in_failures_total"),
        ("sessions", "sessions", "sessions_total"),
    ] {
        let all = full[section][list].as_array().expect("a list").clone();
        let first = cut[section][list].as_array().expect("a list").clone();
        assert_eq!(num(&full[section], total), all.len() as u64, "{section}.{total} of the whole list");
        assert_eq!(cut[section][total], full[section][total], "{section}.{total} does not depend on the rows listed");
        assert_eq!(first, all.iter().take(1).cloned().collect::<Vec<_>>(), "{section}.{list} starts as the whole list");
        lists_cut += usize::from(all.len() > 1);
        for r in [&mut full, &mut cut] {
            r[section][list] = Value::Null;
        }
    }
    assert!(lists_cut >= 4, "the shipped data should fill most lists with more than one row ({lists_cut})");
    for r in [&mut full, &mut cut] {
        r["generated_at"] = Value::Null;
    }
    assert!(full == cut, "the report, its action items included, changed with --max-rows");
}

/// The report gives the same answer when its events and its `detect` findings are spilled to disk
/// (`--memory-limit 1`: every event out of core, every finding in pieces read back in order).
#[test]
fn report_spilled_equals_report_held() {
    let mut held = full_report(None);
    let mut args = full_report_args(None);
    args.extend(["--memory-limit", "1"].map(String::from));
    let mut spilled = TestCommand::new(args).run().expect_code(BAD_INPUT).json();
    assert!(num(&held["root"], "findings_total") > 3, "the shipped data has findings to act on");
    for r in [&mut held, &mut spilled] {
        r["generated_at"] = Value::Null;
    }
    assert!(held == spilled, "the report differs when its events and findings are spilled");
}
