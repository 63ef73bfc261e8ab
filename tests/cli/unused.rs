//! `trailscope unused` on the Invictus IR events with the hand-written snapshot
//! `testdata/iam/invictus-authz.json` (see testdata/README.md). Granted counts were computed with the
//! Python one-liner in testdata/README.md over `src/iam/actions.tsv` (fnmatch, independent of the Rust
//! wildcard code); statuses were checked by hand against the events.

use serde_json::Value;

use crate::{list, num, text, TestCommand};

const AUTHZ: &str = "testdata/iam/invictus-authz.json";
const EVENTS: &str = "testdata/invictus-ir/CloudTrail";

fn unused(extra: &[&str]) -> Value {
    let mut args = vec!["unused", "--iam", AUTHZ, EVENTS, "--format", "json"];
    args.extend_from_slice(extra);
    TestCommand::new(args).run().expect_code(0).json()
}

/// A section of `unused --credential-report testdata/iam/credential-report.csv`, judged as of
/// 2023-07-11.
fn credential_section(section: &str) -> Value {
    TestCommand::new([
        "unused",
        "--iam",
        AUTHZ,
        EVENTS,
        "--credential-report",
        "testdata/iam/credential-report.csv",
        "--as-of",
        "2023-07-11T00:00:00Z",
        "--section",
        section,
        "--format",
        "json",
    ])
    .run()
    .expect_code(0)
    .json()
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array().expect("rows").iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no row for {name}"))
}

fn action<'a>(rows: &'a Value, principal_suffix: &str, action: &str) -> Option<&'a Value> {
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| text(r, "principal").ends_with(principal_suffix) && r["action"] == action)
}

#[test]
fn granted_counts_follow_groups_versions_boundaries_and_denies() {
    let rows = unused(&[]);
    assert_eq!(rows.as_array().unwrap().len(), 6, "every user and role of the snapshot, active or not");
    // benjamin: group auditors (iam:List* minus the fully denied ListSSHPublicKeys, two Gets,
    // ec2:Describe*), an URL-encoded inline policy, S3ReadAudit's default version v2 (not v1's s3:*),
    // all cut by the boundary (which drops ec2:Describe*).
    assert_eq!(num(row(&rows, "benjamin"), "granted"), 71);
    // bert-jan: NotAction [iam:*, organizations:*, account:*]; AdministratorAccess is missing.
    assert_eq!(num(row(&rows, "bert-jan"), "granted"), 20189);
    assert_eq!(num(row(&rows, "stratus-red-team-ec2-enumerate-role"), "granted"), 19);
    assert_eq!(num(row(&rows, "carol"), "granted"), 2);
}

#[test]
fn usage_is_attributed_to_users_and_to_roles_by_role_id() {
    let rows = unused(&[]);
    let ben = row(&rows, "benjamin");
    assert_eq!(num(ben, "events"), 105);
    assert_eq!(text(ben, "last_activity"), "2023-07-10T12:37:50Z");
    // The enumerate role's sessions (8 events, role id AROATFQR7NSCQNEXZHIOB).
    let role = row(&rows, "stratus-red-team-ec2-enumerate-role");
    assert_eq!(num(role, "events"), 8);
    // UpdateInstanceAssociationStatus, PutInventory, UpdateInstanceInformation (PutComplianceItems is
    // used but not granted, so it is a warning, not a verdict).
    assert_eq!(num(role, "used"), 3);
    assert!(text(role, "warnings").contains("ssm:PutComplianceItems"), "{}", role["warnings"]);
}

#[test]
fn dormant_principals_are_listed_with_zero_events() {
    let rows = unused(&[]);
    for name in ["carol", "unused-deploy-role"] {
        let r = row(&rows, name);
        assert_eq!(num(r, "events"), 0, "{name}");
        assert_eq!(num(r, "used"), 0, "{name}");
        assert!(r["last_activity"].is_null(), "{name}");
    }
}

#[test]
fn missing_managed_policy_is_a_warning_naming_it() {
    let rows = unused(&[]);
    let w = text(row(&rows, "bert-jan"), "warnings");
    assert!(w.contains("arn:aws:iam::aws:policy/AdministratorAccess"), "{w}");
    assert!(w.contains("not in the authorization details"), "{w}");
}

#[test]
fn denied_calls_are_attempted_never_used() {
    let rows = unused(&[]);
    // The get-password-data role was denied ec2:GetPasswordData 29 times and holds only
    // ec2:DescribeInstances, which it never called.
    let r = row(&rows, "stratus-red-team-ec2-get-password-data-role");
    assert_eq!(num(r, "attempted"), 1);
    assert_eq!(num(r, "used"), 0);
    assert_eq!(num(r, "unused"), 1);
}

#[test]
fn per_action_statuses() {
    let rows = unused(&["--actions"]);
    let status = |p: &str, a: &str| action(&rows, p, a).map(|r| text(r, "status").to_string());
    // Used, through the S3 rename ListBuckets -> s3:ListAllMyBuckets.
    assert_eq!(status("user/benjamin", "s3:ListAllMyBuckets").as_deref(), Some("used"));
    assert_eq!(status("user/benjamin", "route53:ListHostedZones").as_deref(), Some("used"));
    // Granted by the group, never called.
    assert_eq!(status("user/benjamin", "iam:ListRoles").as_deref(), Some("unused"));
    // A data event the trail did not log: never called unused.
    assert_eq!(status("user/benjamin", "s3:GetObject").as_deref(), Some("not_logged"));
    // Fully denied, outside the boundary, or only in a non-default version: not granted at all.
    assert_eq!(status("user/benjamin", "iam:ListSSHPublicKeys"), None);
    assert_eq!(status("user/benjamin", "ec2:DescribeInstances"), None);
    assert_eq!(status("user/benjamin", "s3:DeleteBucket"), None);
    // Permission-only actions are not_logged.
    assert_eq!(status("user/carol", "iam:PassRole").as_deref(), Some("not_logged"));
    assert_eq!(status("user/carol", "s3:ListAllMyBuckets").as_deref(), Some("unused"));
    // A resource-scoped Deny leaves the action granted, with a note.
    let list_users = action(&rows, "user/benjamin", "iam:ListUsers").expect("granted");
    assert_eq!(text(list_users, "status"), "used");
    assert!(text(list_users, "note").contains("partially denied"));
    assert_eq!(text(list_users, "granted_by"), "auditors-iam (group auditors)");
    // Conditions on an Allow are carried as a note.
    let ec2 = action(&rows, "user/bert-jan", "ec2:RunInstances").expect("granted by NotAction");
    assert!(text(ec2, "note").contains("requires MFA"));
}

#[test]
fn least_privilege_policy_is_valid_and_covers_what_was_used() {
    let out = TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--policy", "benjamin"]).run();
    out.expect_code(0);
    let policy = out.json();
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = list(&policy, "Statement");
    let mut actions: Vec<String> = Vec::new();
    for s in statements {
        assert_eq!(s["Effect"], "Allow");
        // "*" or the ARNs the calls named (checked against the events by `policy_resources.py` in
        // generated_policies_are_scoped_to_the_resources_the_events_name).
        assert!(
            s["Resource"] == "*"
                || s["Resource"].as_str().is_some_and(|r| r.starts_with("arn:"))
                || s["Resource"].as_array().is_some_and(|l| l.iter().all(|r| r.as_str().unwrap().starts_with("arn:"))),
            "{s}"
        );
        assert!(text(s, "Sid").chars().all(|c| c.is_ascii_alphanumeric()), "Sid must be alphanumeric");
        actions.extend(list(s, "Action").iter().map(|a| a.as_str().unwrap().to_string()));
    }
    for want in ["s3:ListAllMyBuckets", "s3:GetBucketAcl", "route53:ListHostedZones", "iam:ListUsers"] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    // benjamin's successful calls (listed by hand from the events): 9 non-S3 actions and 9 S3 ones
    // (GetStorageLensDashboardDataInternal is not an IAM action and stays out), plus
    // s3:GetBucketPolicyStatus, whose 4 calls all failed after authorization (NoSuchBucketPolicy).
    assert!(actions.iter().any(|a| a == "s3:GetBucketPolicyStatus"), "{actions:?}");
    assert_eq!(actions.len(), 19, "{actions:?}");
}

#[test]
fn credential_report_flags_stale_and_old_keys() {
    let rows = credential_section("access_keys");
    let findings: Vec<(String, String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (text(r, "user").into(), text(r, "key").into(), text(r, "finding").into()))
        .collect();
    let expected = vec![
        // Whole days from each date to --as-of, counted by hand (and with Python's datetime).
        (
            "bert-jan".to_string(),
            "access_key_1".to_string(),
            "not rotated for 190 days (CIS: rotate within 90)".to_string(),
        ),
        ("carol".into(), "access_key_1".into(), "active, never used".into()),
        ("carol".into(), "access_key_1".into(), "not rotated for 555 days (CIS: rotate within 90)".into()),
        ("carol".into(), "access_key_2".into(), "unused for 119 days".into()),
        ("carol".into(), "access_key_2".into(), "not rotated for 131 days (CIS: rotate within 90)".into()),
    ];
    assert_eq!(findings, expected);
}

#[test]
fn credential_report_users_show_mfa_password_age_and_two_keys() {
    let rows = credential_section("users");
    let finding = |user: &str| {
        rows.as_array().unwrap().iter().find(|r| r["user"] == user).map(|r| text(r, "findings").to_string())
    };
    // Read off testdata/iam/credential-report.csv by hand.
    assert_eq!(finding("benjamin").as_deref(), Some(""));
    assert_eq!(finding("bert-jan").as_deref(), Some("no MFA"));
    assert_eq!(finding("carol").as_deref(), Some("no MFA; two active access keys"));
    assert_eq!(finding("<root_account>").as_deref(), Some(""));
    let ben = rows.as_array().unwrap().iter().find(|r| r["user"] == "benjamin").unwrap();
    assert_eq!(ben["password_age_days"], 9);
}

#[test]
fn used_side_needs_no_snapshot_and_applies_the_renames() {
    let out = TestCommand::new(["unused", "--used", EVENTS, "--format", "json"]).run();
    out.expect_code(0);
    let rows = out.json();
    let ben: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["principal"] == "arn:aws:iam::123837392027:user/benjamin")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    // ListBuckets is s3:ListAllMyBuckets; the 19 actions of benjamin's least-privilege policy plus
    // s3:GetStorageLensDashboardDataInternal, which the catalogue does not know (listed by hand from
    // the events).
    assert!(ben.contains(&"s3:ListAllMyBuckets") && !ben.contains(&"s3:ListBuckets"), "{ben:?}");
    assert_eq!(ben.len(), 20, "{ben:?}");
    let mut sorted = ben.clone();
    sorted.sort_unstable();
    assert_eq!(ben, sorted, "rows are sorted by principal, then action");
}

/// A call that failed after authorization used its permission (#14): bert-jan's GetBucketWebsite
/// calls all failed with NoSuchWebsiteConfiguration and his StopLogging calls with
/// TrailNotFoundException (checked by hand in the events); both are `used`, and his least-privilege
/// policy keeps them (without them those calls would become AccessDenied).
#[test]
fn failures_after_authorization_count_as_used() {
    let rows = unused(&["--actions"]);
    let status = |a: &str| action(&rows, "user/bert-jan", a).map(|r| text(r, "status").to_string());
    assert_eq!(status("s3:GetBucketWebsite").as_deref(), Some("used"));
    assert_eq!(status("cloudtrail:StopLogging").as_deref(), Some("used"));
    let out = TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--policy", "bert-jan"]).run();
    out.expect_code(0);
    let text = out.stdout;
    assert!(text.contains("\"s3:GetBucketWebsite\"") && text.contains("\"cloudtrail:StopLogging\""), "{text}");
}

/// IAM's size limit counts characters without white space.
fn iam_size(doc: &Value) -> usize {
    serde_json::to_string(doc).unwrap().chars().filter(|c| !c.is_whitespace()).count()
}

/// The generated policies can be applied: a policy larger than a managed policy may be is split into
/// policies that each fit (bert-jan's is ~7,700 characters), an independent linter (parliament) finds
/// no error in any of them, and a principal that used nothing gets a plain statement saying so, not
/// an empty `Statement` list.
#[test]
fn generated_policies_fit_iam_and_pass_an_independent_linter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = |who: &str| {
        let out = TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--policy", who]).run();
        out.expect_code(0);
        (out.json(), out.stderr)
    };
    let (bert, note) = policy("bert-jan");
    let parts = bert.as_array().unwrap_or_else(|| panic!("bert-jan's policy is split into a list: {bert}"));
    assert!(parts.len() >= 2 && note.contains("split into"), "{note}");
    // (action, resource) pairs: an action is in several statements only when its list of resources
    // was cut to fit; no pair is granted twice.
    let mut grants = Vec::new();
    for p in parts {
        assert!(iam_size(p) <= 6144, "{} characters", iam_size(p));
        for s in list(p, "Statement") {
            let resources: Vec<String> = match &s["Resource"] {
                Value::Array(l) => l.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
                r => vec![r.as_str().unwrap().to_string()],
            };
            for a in list(s, "Action") {
                grants.extend(resources.iter().map(|r| (a.as_str().unwrap().to_string(), r.clone())));
            }
        }
    }
    assert!(grants.iter().any(|(a, _)| a == "cloudtrail:StopLogging"));
    let mut unique = grants.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), grants.len(), "each action granted once per resource");

    let (carol, note) = policy("carol");
    assert!(carol.get("Statement").is_none(), "{carol}");
    assert_eq!(num(&carol, "used_actions"), 0);
    assert!(text(&carol, "recommendation").contains("remove"), "{carol}");
    assert!(note.contains("used none"), "{note}");

    let (ben, _) = policy("benjamin");
    // The linted policies are the scoped ones (ARNs of buckets, roles, keys...), not only "*".
    for doc in [&ben, &bert] {
        assert!(doc.to_string().contains("\"arn:aws:s3:::"), "{doc}");
    }
    let files = [("benjamin.json", ben), ("bert-jan.json", bert)];
    for (name, doc) in &files {
        std::fs::write(dir.path().join(name), serde_json::to_string_pretty(doc).unwrap()).unwrap();
    }
    let lint = std::process::Command::new("python3")
        .arg(crate::repo_root().join("tests/cli/policy_lint.py"))
        .args(files.iter().map(|(n, _)| dir.path().join(n)))
        .output()
        .expect("python3 (scripts/test puts the test venv with parliament first on PATH)");
    let report = String::from_utf8_lossy(&lint.stdout);
    assert!(
        lint.status.success(),
        "parliament found errors (or is not installed: run scripts/test):\n{report}\n{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(report.contains("RESOURCE_STAR"), "the linter ran and saw the documents: {report}");
}

/// `--policy` scopes each action to the resources its calls named (the `resources` field, ARNs built
/// from request parameters), with "*" only where the action has no resource type or a call named
/// none: `policy_resources.py` recomputes that from the raw events with parliament's copy of the
/// Service Authorization Reference, independently of the Rust code, and finds no difference; a
/// policy with one ARN changed is caught (the check can fail).
#[test]
fn generated_policies_are_scoped_to_the_resources_the_events_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |who: &str, doc: &Value| {
        let path = dir.path().join(format!("{who}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
        let out = std::process::Command::new("python3")
            .arg(crate::repo_root().join("tests/cli/policy_resources.py"))
            .arg(crate::repo_root().join(EVENTS))
            .arg(who)
            .arg(&path)
            .arg(crate::repo_root().join(AUTHZ))
            .output()
            .expect("python3 (scripts/test puts the test venv with parliament first on PATH)");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    for (who, min_scoped) in [("benjamin", 6), ("bert-jan", 90)] {
        let out = TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--policy", who]).run();
        out.expect_code(0);
        let doc = out.json();
        let (ok, report) = check(who, &doc);
        assert!(ok, "{who}: {report}");
        let scoped: usize = report
            .split(" scoped")
            .next()
            .and_then(|s| s.rsplit(", ").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{report}"));
        assert!(scoped >= min_scoped, "{who}: {report}");
    }
    // The check can fail: benjamin's policy with one bucket ARN changed.
    let out = TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--policy", "benjamin"]).run();
    let text = out.stdout.replacen("arn:aws:s3:::config-bucket-123837392027", "arn:aws:s3:::another-bucket", 1);
    let (ok, report) = check("benjamin", &serde_json::from_str(&text).unwrap());
    assert!(!ok && report.contains("another-bucket"), "{report}");
}

/// `unused --actions --principal` lists one principal's rows.
#[test]
fn actions_of_one_principal() {
    let all = unused(&["--actions"]);
    let ben = unused(&["--actions", "--principal", "benjamin"]);
    let want = all.as_array().unwrap().iter().filter(|r| text(r, "principal").ends_with("user/benjamin")).count();
    assert!(want > 0);
    assert_eq!(ben.as_array().unwrap().len(), want);
    assert!(ben.as_array().unwrap().iter().all(|r| text(r, "principal").ends_with("user/benjamin")));
    let roles = unused(&["--principal", "*role/stratus*"]);
    assert!(roles.as_array().unwrap().iter().all(|r| text(r, "principal").contains(":role/stratus")), "{roles}");
    TestCommand::new(["unused", "--iam", AUTHZ, EVENTS, "--principal", "nobody"]).run().expect_code(1);
}

/// Risk first (#14): each granted action says what it allows, and each principal counts its unused
/// actions of a severe kind and names those that allow privilege escalation. From the snapshot (read
/// by hand): unused-deploy-role holds lambda:UpdateFunctionCode (never called), iam:PassRole and
/// s3:PutObject (neither can show in these events: not_logged); benjamin holds only reads.
#[test]
fn unused_permissions_are_ranked_by_what_they_allow() {
    let rows = unused(&[]);
    let deploy = row(&rows, "unused-deploy-role");
    assert_eq!(num(deploy, "unused_risky"), 1);
    assert_eq!(text(deploy, "remove_first"), "can escalate, never used: lambda:UpdateFunctionCode");
    assert_eq!(num(row(&rows, "benjamin"), "unused_risky"), 0);
    assert!(row(&rows, "benjamin")["remove_first"].is_null());
    let actions = unused(&["--actions", "--principal", "unused-deploy-role"]);
    let risk = |a: &str| text(action(&actions, "role/unused-deploy-role", a).expect("granted"), "risk").to_string();
    assert_eq!(risk("lambda:UpdateFunctionCode"), "privilege_escalation");
    assert_eq!(risk("iam:PassRole"), "privilege_escalation,resource_exposure");
    assert_eq!(risk("s3:PutObject"), "infrastructure_modification");
}

/// `report --attestation FILE.csv` (#14): the quarterly review's sheet, one row per principal and
/// granted action, the same rows as `unused --actions`, a verdict that follows the status (used:
/// keep; unused: remove; not logged: review) and empty reviewer and decision columns.
#[test]
fn attestation_sheet_for_the_quarterly_review() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("attest.csv");
    TestCommand::new(["report", "--iam", AUTHZ, EVENTS, "-q", "--attestation"]).arg(&sheet).run().expect_code(0);
    let text_csv = std::fs::read_to_string(&sheet).unwrap();
    let mut lines = text_csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "principal");
    for col in ["action", "risk", "suggested_verdict", "reason", "reviewer", "decision"] {
        assert!(header.contains(&col), "{col} in {header:?}");
    }
    let rows = unused(&["--actions"]);
    let rows = rows.as_array().unwrap();
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), rows.len(), "one row per principal and granted action");
    let deploy =
        body.iter().find(|l| l.contains("unused-deploy-role") && l.contains(",lambda:UpdateFunctionCode,")).unwrap();
    assert!(deploy.contains(",remove,\"never used in the window, and it allows privilege_escalation\""), "{deploy}");
    let used = rows.iter().filter(|r| r["status"] == "used").count();
    assert_eq!(body.iter().filter(|l| l.contains(",keep,used in the window,")).count(), used);
    assert!(body.iter().all(|l| l.ends_with(",,,")), "reviewer, decision and comment are left empty");
}
