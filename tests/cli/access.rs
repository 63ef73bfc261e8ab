//! Issue #14's access questions: `trailscope sessions` (durations requested for temporary credentials
//! versus their use) and `trailscope unused --roles`. Golden cases from `scripts/golden_access.py`
//! (testdata/golden/access), plus hand-made events whose answer is worked out in the comments.

use std::fs;

use serde_json::{json, Value};

use crate::questions::{answer, assert_answer};
use crate::{list, num, repo_root, text, TestCommand};

fn check_case(case: &str) {
    let path = repo_root().join("testdata/golden/access").join(format!("{case}.json"));
    let g: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("run scripts/golden_access.py")).expect("golden JSON");
    let args: Vec<String> = list(&g, "args").iter().map(|a| a.as_str().expect("string").to_string()).collect();
    let got = answer(&args, num(&g, "exit_code") as i32, text(&g, "format"));
    assert_answer(&got, &g["expect"], case);
}

#[test]
fn sessions_invictus() {
    check_case("sessions-invictus");
}

#[test]
fn sessions_stratus() {
    check_case("sessions-stratus");
}

#[test]
fn sessions_both_inputs() {
    check_case("sessions-both");
}

#[test]
fn activity_by_person_golden() {
    check_case("activity-by-person-identity-center");
}

#[test]
fn activity_by_permission_set_golden() {
    check_case("activity-by-permission-set-identity-center");
}

/// Every golden file of the folder has a test above.
#[test]
fn every_sessions_golden_file_has_a_test() {
    let mut names: Vec<String> = fs::read_dir(repo_root().join("testdata/golden/access"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "activity-by-permission-set-identity-center.json",
            "activity-by-person-identity-center.json",
            "sessions-both.json",
            "sessions-invictus.json",
            "sessions-stratus.json",
            "unused-roles-invictus-lastused.json",
            "unused-roles-invictus.json",
        ]
    );
}

fn event(time: &str, id: &str, name: &str, identity: Value, req: Value, resp: Value) -> Value {
    json!({
        "eventVersion": "1.08", "eventTime": time, "eventID": id, "eventSource": if name.contains(':') {
            "s3.amazonaws.com" } else { "sts.amazonaws.com" },
        "eventName": name.trim_start_matches("s3:"), "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.1",
        "userAgent": "test", "userIdentity": identity, "requestParameters": req, "responseElements": resp,
        "recipientAccountId": "111122223333", "eventType": "AwsApiCall"
    })
}

/// Hand-made: alice's GetSessionToken asks for "129600" (a string) and its key is used from 10:00:00
/// to 12:00:30 (7,230 s): 129,600 >= 4 x 7,230 and 122,370 s more than 3,600, so flagged. The
/// AssumeRoleWithSAML call has no durationSeconds (3,600 assumed) and its key is used 10:00:00 to
/// 10:20:00 (1,200 s): 3,600 >= 4,800 fails, not flagged. A failed AssumeRole issues nothing.
#[test]
fn hand_made_sessions_with_string_duration_default_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let alice = json!({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
                       "principalId": "AIDAEXAMPLE", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"});
    let saml = json!({"type": "SAMLUser", "principalId": "SAMPLE:bob", "userName": "bob"});
    let as_key = |k: &str| {
        json!({"type": "AssumedRole", "accessKeyId": k, "accountId": "111122223333",
                                  "arn": "arn:aws:sts::111122223333:assumed-role/x/y"})
    };
    let creds = |k: &str| json!({"credentials": {"accessKeyId": k, "expiration": "later"}});
    let role = "arn:aws:iam::111122223333:role/Admins";
    let mut failed =
        event("2024-01-01T09:00:00Z", "e0", "AssumeRole", alice.clone(), json!({"roleArn": role}), json!(null));
    failed["errorCode"] = json!("AccessDenied");
    let records = vec![
        failed,
        event(
            "2024-01-01T09:59:00Z",
            "e1",
            "GetSessionToken",
            alice.clone(),
            json!({"durationSeconds": "129600"}),
            creds("ASIAALICE"),
        ),
        event("2024-01-01T10:00:00Z", "e2", "s3:ListBuckets", as_key("ASIAALICE"), json!(null), json!(null)),
        event("2024-01-01T12:00:30Z", "e3", "s3:ListBuckets", as_key("ASIAALICE"), json!(null), json!(null)),
        event(
            "2024-01-01T09:59:30Z",
            "e4",
            "AssumeRoleWithSAML",
            saml,
            json!({"roleArn": role, "principalArn": "p"}),
            creds("ASIABOB"),
        ),
        event("2024-01-01T10:20:00Z", "e5", "s3:ListBuckets", as_key("ASIABOB"), json!(null), json!(null)),
        event("2024-01-01T10:00:00Z", "e6", "s3:ListBuckets", as_key("ASIABOB"), json!(null), json!(null)),
    ];
    let file = dir.path().join("events.json");
    fs::write(&file, serde_json::to_vec(&json!({"Records": records})).unwrap()).unwrap();
    let out = TestCommand::new(["sessions"]).arg(&file).args(["--format", "json", "-q"]).run();
    out.expect_code(0);
    let rows = out.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let (a, r) = (&rows[0], &rows[1]);
    assert_eq!(a["principal"], "arn:aws:iam::111122223333:user/alice");
    assert_eq!((a["principal_type"].as_str(), a["issued_by"].as_str()), (Some("IAMUser"), Some("GetSessionToken")));
    assert_eq!((num(a, "sessions"), num(a, "sessions_default_duration")), (1, 0));
    assert_eq!((num(a, "requested_max_s"), num(a, "used_max_s"), num(a, "used_typical_s")), (129_600, 7230, 7230));
    assert_eq!(a["over_requested"], true);
    assert_eq!(r["principal"], role);
    assert_eq!((r["principal_type"].as_str(), r["issued_by"].as_str()), (Some("Role"), Some("AssumeRoleWithSAML")));
    assert_eq!((num(r, "sessions"), num(r, "sessions_default_duration")), (1, 1));
    assert_eq!((num(r, "requested_max_s"), num(r, "sessions_used"), num(r, "used_max_s")), (3600, 1, 1200));
    assert_eq!(r["over_requested"], false);
    assert!(text(r, "note").contains("default"), "{r:#}");
}

/// Broken input is reported (exit 2), never a crash; the good events still answer.
#[test]
fn malformed_input_is_not_a_crash() {
    let out = TestCommand::new(["sessions", "testdata/malformed", "--format", "json", "-q"]).run();
    out.expect_code(2);
    assert!(out.json().is_array());
}

#[test]
fn unused_roles_invictus() {
    check_case("unused-roles-invictus");
}

#[test]
fn unused_roles_with_role_last_used() {
    check_case("unused-roles-invictus-lastused");
}

/// Facts checked by hand in the snapshots: `unused-deploy-role` appears in no event; without
/// `RoleLastUsed` it is never used, with the copy's date it was used outside the window.
#[test]
fn unused_roles_statuses() {
    let status = |authz: &str| -> String {
        let out = TestCommand::new(["unused", "--iam", authz, "testdata/invictus-ir", "--roles", "--format", "json"])
            .arg("-q")
            .run();
        out.expect_code(0);
        let rows = out.json();
        let row = rows.as_array().unwrap().iter().find(|r| r["name"] == "unused-deploy-role").cloned().unwrap();
        assert_eq!(num(&row, "events"), 0);
        text(&row, "status").to_string()
    };
    assert_eq!(status("testdata/iam/invictus-authz.json"), "never used in the window");
    assert_eq!(status("testdata/iam/invictus-authz-lastused.json"), "used outside the window (RoleLastUsed)");
}

/// A `RoleLastUsed` of the wrong shape is read as absent, never a crash; `--roles` with `--actions` is a
/// usage error.
#[test]
fn unused_roles_odd_snapshot_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut az: Value =
        serde_json::from_str(&fs::read_to_string(repo_root().join("testdata/iam/invictus-authz.json")).unwrap())
            .unwrap();
    for r in az["RoleDetailList"].as_array_mut().unwrap() {
        r["RoleLastUsed"] = json!({"LastUsedDate": 17, "Region": null});
    }
    let path = dir.path().join("authz.json");
    fs::write(&path, serde_json::to_vec(&az).unwrap()).unwrap();
    let out = TestCommand::new(["unused", "--iam"])
        .arg(&path)
        .args(["testdata/invictus-ir", "--roles", "--format", "json", "-q"])
        .run();
    out.expect_code(0);
    let rows = out.json();
    assert!(rows.as_array().unwrap().iter().all(|r| r["role_last_used_date"].is_null()), "{rows:#}");
    TestCommand::new(["unused", "--iam", "testdata/iam/invictus-authz.json", "testdata/invictus-ir", "--roles"])
        .arg("--actions")
        .run()
        .expect_code(1);
}

/// `activity --by person|permission-set` on testdata/identity-center (written from the CloudTrail
/// reference's shapes). Counted by hand from the file: alice used AdministratorAccess in two accounts
/// (ic-0001, ic-0002 in 111122223333, ic-0003 in 444455556666: 3 events, s3 and ec2, 3 actions); bob
/// used Read_Only (an underscore in the set's name) twice, one denied. The IdentityCenterUser event
/// (ic-0006: sso ListAccounts) is its user's, by `onBehalfOf.userId`, and has no permission set; the
/// plain role session (ic-0007) is no Identity Center session.
#[test]
fn activity_by_person_and_permission_set() {
    let rows = |by: &str| -> Vec<Value> {
        let out =
            TestCommand::new(["activity", "testdata/identity-center", "--by", by, "--format", "json", "-q"]).run();
        out.expect_code(0);
        out.json().as_array().unwrap().clone()
    };
    let key = |r: &Value, k: &str| -> (String, u64, u64, u64, u64) {
        (text(r, k).to_string(), num(r, "events"), num(r, "errors"), num(r, "services"), num(r, "actions"))
    };
    let people = rows("person");
    let got: Vec<_> = people.iter().map(|r| key(r, "person")).collect();
    assert_eq!(
        got,
        [
            ("alice@example.com".into(), 3, 0, 2, 3),
            ("bob@example.com".into(), 2, 1, 1, 1),
            ("544894e8-80c1-707f-60e3-3ba6510dfac1".into(), 1, 0, 1, 1),
        ]
    );
    assert_eq!(text(&people[0], "first_seen"), "2025-03-03T09:00:00Z");
    // Every account a person acted in, not one of them: alice in both accounts (ic-0001/2 and ic-0003).
    assert_eq!((num(&people[0], "account_count"), text(&people[0], "accounts")), (2, "111122223333,444455556666"));
    assert!(people[0].get("account_id").is_none(), "no single account for a person across accounts");
    assert_eq!(text(&people[0], "last_seen"), "2025-03-03T10:00:00Z");
    let sets = rows("permission-set");
    let got: Vec<_> = sets.iter().map(|r| key(r, "permission_set")).collect();
    assert_eq!(got, [("AdministratorAccess".into(), 3, 0, 2, 3), ("Read_Only".into(), 2, 1, 1, 1)]);
}

/// `unused --by permission-set`: the AWSReservedSSO_<set>_<suffix> roles of two accounts' snapshots
/// (testdata/iam/identity-center-authz-*.json, written for this test: AdministratorAccess grants
/// s3:ListAllMyBuckets, s3:GetBucketPolicy, ec2:DescribeInstances, iam:CreateAccessKey; Read_Only the
/// first and third) merged per permission set, against testdata/identity-center. Counted by hand from
/// the events: AdministratorAccess used ListBuckets (= s3:ListAllMyBuckets) and GetBucketPolicy in
/// 111122223333 and DescribeInstances in 444455556666; never iam:CreateAccessKey (privilege
/// escalation). Read_Only listed buckets in 111122223333, was denied it in 444455556666 (attempted),
/// never described instances.
#[test]
fn unused_per_permission_set_across_accounts() {
    let iam = [
        "--iam",
        "testdata/iam/identity-center-authz-111122223333.json",
        "--iam",
        "testdata/iam/identity-center-authz-444455556666.json",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["unused", "testdata/identity-center", "-q", "--by", "permission-set"];
        args.extend_from_slice(&iam);
        args.extend_from_slice(extra);
        TestCommand::new(args).run()
    };
    let out = run(&["--format", "json"]);
    out.expect_code(0);
    let rows = out.json();
    let got: Vec<(String, String, u64, u64, u64, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                text(r, "name").to_string(),
                text(r, "accounts").to_string(),
                num(r, "granted"),
                num(r, "used"),
                num(r, "unused"),
                num(r, "attempted"),
            )
        })
        .collect();
    let both = "111122223333,444455556666".to_string();
    assert_eq!(got, [("AdministratorAccess".into(), both.clone(), 4, 3, 1, 0), ("Read_Only".into(), both, 2, 1, 1, 1)]);
    assert_eq!(text(&rows[0], "remove_first"), "can escalate, never used: iam:CreateAccessKey");

    let out = run(&["--policy", "AdministratorAccess"]);
    out.expect_code(0);
    let policy = out.json();
    let mut actions: Vec<String> = list(&policy, "Statement")
        .iter()
        .flat_map(|s| list(s, "Action").iter().map(|a| a.as_str().unwrap().to_string()).collect::<Vec<_>>())
        .collect();
    actions.sort();
    assert_eq!(actions, ["ec2:DescribeInstances", "s3:GetBucketPolicy", "s3:ListAllMyBuckets"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.json");
    std::fs::write(&file, out.stdout.as_bytes()).unwrap();
    let lint = std::process::Command::new("python3")
        .arg(crate::repo_root().join("tests/cli/policy_lint.py"))
        .arg(&file)
        .output()
        .expect("python3 with parliament (scripts/test)");
    assert!(lint.status.success(), "{}", String::from_utf8_lossy(&lint.stdout));

    // No permission-set role in the snapshot: a clear error.
    let out = TestCommand::new([
        "unused",
        "testdata/identity-center",
        "-q",
        "--by",
        "permission-set",
        "--iam",
        "testdata/iam/invictus-authz.json",
    ])
    .run();
    out.expect_code(1);
    assert!(out.stderr.contains("no AWSReservedSSO_"), "{}", out.stderr);
}
