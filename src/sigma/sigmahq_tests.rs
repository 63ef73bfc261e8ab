//! Loads the 57 SigmaHQ CloudTrail rules and checks a few against hand-made events.

use super::{load_rules, Loaded, Rule};
use serde_json::{json, Value};
use std::path::Path;

/// The shipped SigmaHQ rules (the default rule set).
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sigma/rules/sigmahq");

fn load_dir() -> Vec<(String, Result<Rule, String>)> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(Path::new(DIR)).expect("the shipped rules are in the source tree");
    let mut paths: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for l in load_rules(&text) {
            out.push((
                name.clone(),
                match l {
                    Ok(Loaded::Rule(r)) => Ok(r),
                    Ok(Loaded::Correlation(_)) => Err("correlation".into()),
                    Err(e) => Err(e.to_string()),
                },
            ));
        }
    }
    out
}

fn by_file<'a>(all: &'a [(String, Result<Rule, String>)], file: &str) -> &'a Rule {
    match all.iter().find(|(n, _)| n == file) {
        Some((_, Ok(r))) => r,
        other => panic!("{file}: {other:?}"),
    }
}

#[test]
fn all_57_sigmahq_rules_load() {
    let all = load_dir();
    if all.is_empty() {
        eprintln!("{DIR} not present; skipped");
        return;
    }
    let failed: Vec<String> = all.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(all.len(), 57);
}

#[test]
fn sigmahq_rules_match_real_shapes() {
    let all = load_dir();
    if all.is_empty() {
        return;
    }
    let stop: Value = json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging"});
    let r = by_file(&all, "aws_cloudtrail_disable_logging.yml");
    assert!(r.matches(&stop));
    assert!(!r.matches(&json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "StartLogging"})));
    assert_eq!(r.meta.attack_techniques(), vec!["T1685.002"]);

    let ecs = by_file(&all, "aws_ecs_task_definition_cred_endpoint_query.yml");
    let ev = json!({"eventSource": "ecs.amazonaws.com", "eventName": "RegisterTaskDefinition",
        "requestParameters": {"containerDefinitions": [{"name": "a"},
            {"command": ["sh", "-c", "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}]}});
    assert!(ecs.matches(&ev));

    let imds = by_file(&all, "aws_cloudtrail_imds_malicious_usage.yml");
    let arn = "arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1";
    assert!(imds.matches(
        &json!({"userIdentity": {"arn": arn}, "eventSource": "s3.amazonaws.com", "sourceIPAddress": "1.2.3.4"})
    ));
    assert!(!imds.matches(&json!({"userIdentity": {"arn": arn}, "eventSource": "ssm.amazonaws.com"})));

    let login = by_file(&all, "aws_update_login_profile.yml");
    let base = json!({"eventSource": "iam.amazonaws.com", "eventName": "UpdateLoginProfile",
        "userIdentity": {"arn": "bob"}, "requestParameters": {"userName": "alice"}});
    assert!(login.matches(&base));
    let mut own = base.clone();
    own["requestParameters"]["userName"] = json!("Bob");
    assert!(!login.matches(&own));

    let policy = by_file(&all, "aws_iam_s3browser_templated_s3_bucket_policy_creation.yml");
    // The rule matches `requestParameters` as sorted compact JSON text: it fires when the policy
    // is a nested object ...
    let ev = json!({"eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy", "userAgent": "S3 Browser 9",
        "requestParameters": {"policyDocument": {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::<YOUR-BUCKET-NAME>/*"]}]}}});
    assert!(policy.matches(&ev));
    // ... but not when CloudTrail delivers it as a JSON string, whose quotes are escaped.
    let mut as_string = ev.clone();
    let doc = as_string["requestParameters"]["policyDocument"].to_string();
    as_string["requestParameters"]["policyDocument"] = json!(doc);
    assert!(!policy.matches(&as_string));
    assert!(policy.matches(&ev));
}

#[test]
fn truncated_rule_files_never_panic() {
    let events =
        [json!({"eventName": "StopLogging", "a": [1, {"b": null}]}), json!([1, 2]), json!("text"), json!(null)];
    let Ok(rd) = std::fs::read_dir(Path::new(DIR)) else {
        return;
    };
    let mut loaded = 0;
    for p in rd.filter_map(Result::ok).map(|e| e.path()) {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for cut in (0..text.len()).step_by(13).filter(|&c| text.is_char_boundary(c)) {
            for r in load_rules(&text[..cut]).into_iter().flatten() {
                if let Loaded::Rule(r) = r {
                    loaded += 1;
                    for ev in &events {
                        let _ = r.matches(ev);
                    }
                }
            }
        }
    }
    // Some prefixes end after a complete condition and load; most are refused.
    assert!(loaded > 0);
}
