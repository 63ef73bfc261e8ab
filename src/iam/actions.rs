//! From a CloudTrail event to the IAM action(s) it exercised. The rules are data: service-prefix
//! exceptions, renamed event names, calls that need no permission, and actions CloudTrail cannot
//! show. Each entry is checked against the catalogue by a test.

use super::catalogue::Catalogue;

/// eventSource (without `.amazonaws.com`) -> IAM service prefix, where the two differ.
pub const SOURCE_PREFIX: &[(&str, &str)] = &[
    ("monitoring", "cloudwatch"),
    ("email", "ses"),
    ("streams.dynamodb", "dynamodb"),
    ("servicecatalog-appregistry", "servicecatalog"),
    ("tagging", "tag"),
    ("runtime.lex", "lex"),
    ("models.lex", "lex"),
    ("runtime.sagemaker", "sagemaker"),
    ("data.iot", "iot"),
    ("bedrock-runtime", "bedrock"),
];

/// (prefix, eventName) -> actions, where the event name is not the action name.
pub const RENAMES: &[(&str, &str, &[&str])] = &[
    ("s3", "ListBuckets", &["s3:ListAllMyBuckets"]),
    ("s3", "ListObjects", &["s3:ListBucket"]),
    ("s3", "ListObjectsV2", &["s3:ListBucket"]),
    ("s3", "HeadBucket", &["s3:ListBucket"]),
    ("s3", "ListObjectVersions", &["s3:ListBucketVersions"]),
    ("s3", "HeadObject", &["s3:GetObject"]),
    ("s3", "GetObjectAttributes", &["s3:GetObject", "s3:GetObjectAttributes"]),
    ("s3", "SelectObjectContent", &["s3:GetObject"]),
    ("s3", "CopyObject", &["s3:GetObject", "s3:PutObject"]),
    ("s3", "UploadPartCopy", &["s3:GetObject", "s3:PutObject"]),
    ("s3", "CreateMultipartUpload", &["s3:PutObject"]),
    ("s3", "UploadPart", &["s3:PutObject"]),
    ("s3", "CompleteMultipartUpload", &["s3:PutObject"]),
    ("s3", "DeleteObjects", &["s3:DeleteObject"]),
    ("s3", "GetBucketLifecycle", &["s3:GetLifecycleConfiguration"]),
    ("s3", "GetBucketLifecycleConfiguration", &["s3:GetLifecycleConfiguration"]),
    ("s3", "PutBucketLifecycle", &["s3:PutLifecycleConfiguration"]),
    ("s3", "PutBucketLifecycleConfiguration", &["s3:PutLifecycleConfiguration"]),
    ("s3", "DeleteBucketLifecycle", &["s3:PutLifecycleConfiguration"]),
    ("s3", "GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    ("s3", "PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    ("s3", "DeleteBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    ("s3", "GetBucketReplication", &["s3:GetReplicationConfiguration"]),
    ("s3", "PutBucketReplication", &["s3:PutReplicationConfiguration"]),
    ("s3", "DeleteBucketReplication", &["s3:PutReplicationConfiguration"]),
    ("s3", "GetBucketCors", &["s3:GetBucketCORS"]),
    ("s3", "PutBucketCors", &["s3:PutBucketCORS"]),
    ("s3", "DeleteBucketCors", &["s3:PutBucketCORS"]),
    ("s3", "DeleteBucketTagging", &["s3:PutBucketTagging"]),
    ("s3", "DeleteBucketWebsite", &["s3:DeleteBucketWebsite"]),
    ("s3", "GetBucketNotificationConfiguration", &["s3:GetBucketNotification"]),
    ("s3", "PutBucketNotificationConfiguration", &["s3:PutBucketNotification"]),
    ("s3", "GetBucketAccelerateConfiguration", &["s3:GetAccelerateConfiguration"]),
    ("s3", "PutBucketAccelerateConfiguration", &["s3:PutAccelerateConfiguration"]),
    ("s3", "DeleteBucketOwnershipControls", &["s3:PutBucketOwnershipControls"]),
    ("s3", "DeleteBucketPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    ("s3", "GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"]),
    ("s3", "PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    ("s3", "DeletePublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    ("s3", "GetObjectLockConfiguration", &["s3:GetBucketObjectLockConfiguration"]),
    ("s3", "PutObjectLockConfiguration", &["s3:PutBucketObjectLockConfiguration"]),
    ("s3", "DeleteBucketIntelligentTieringConfiguration", &["s3:PutIntelligentTieringConfiguration"]),
    ("s3", "GetBucketIntelligentTieringConfiguration", &["s3:GetIntelligentTieringConfiguration"]),
    ("s3", "PutBucketIntelligentTieringConfiguration", &["s3:PutIntelligentTieringConfiguration"]),
    ("s3", "GetBucketInventoryConfiguration", &["s3:GetInventoryConfiguration"]),
    ("s3", "PutBucketInventoryConfiguration", &["s3:PutInventoryConfiguration"]),
    ("s3", "GetBucketMetricsConfiguration", &["s3:GetMetricsConfiguration"]),
    ("s3", "PutBucketMetricsConfiguration", &["s3:PutMetricsConfiguration"]),
    ("s3", "GetBucketAnalyticsConfiguration", &["s3:GetAnalyticsConfiguration"]),
    ("s3", "PutBucketAnalyticsConfiguration", &["s3:PutAnalyticsConfiguration"]),
    ("kms", "ReEncrypt", &["kms:ReEncryptFrom", "kms:ReEncryptTo"]),
    ("lambda", "Invoke", &["lambda:InvokeFunction"]),
    ("ec2", "SendSerialConsoleSSHPublicKey", &["ec2-instance-connect:SendSerialConsoleSSHPublicKey"]),
];

/// Calls that need no IAM permission (or are not calls: sign-in and service events are filtered by
/// event type before this list is consulted).
pub const NO_PERMISSION: &[&str] = &[
    "sts:GetCallerIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
    "signin:ConsoleLogin",
    "signin:CheckMfa",
    "signin:ExitRole",
    "signin:RenewRole",
    "signin:SwitchRole",
    "signin:UserAuthentication",
    "signin:CredentialChallenge",
    "signin:CredentialVerification",
    "signin:PasswordUpdated",
];

/// Actions that authorize something CloudTrail never logs as a call of that name.
pub const PERMISSION_ONLY: &[&str] = &[
    "iam:PassRole",
    "rds-db:connect",
    "execute-api:Invoke",
    "execute-api:ManageConnections",
    "elasticfilesystem:ClientMount",
    "elasticfilesystem:ClientWrite",
    "elasticfilesystem:ClientRootAccess",
    "iam:CreateServiceLinkedRole",
];

/// Data-plane actions per service (globs): logged only as data events, which a trail records only
/// when configured to. (eventSource, action patterns).
pub const DATA_PLANE: &[(&str, &[&str])] = &[
    (
        "s3.amazonaws.com",
        &[
            "s3:GetObject*",
            "s3:PutObject*",
            "s3:DeleteObject*",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:RestoreObject",
            "s3:ReplicateObject",
            "s3:ReplicateDelete",
            "s3:ReplicateTags",
        ],
    ),
    ("lambda.amazonaws.com", &["lambda:InvokeFunction", "lambda:InvokeAsync", "lambda:InvokeFunctionUrl"]),
    (
        "dynamodb.amazonaws.com",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:PartiQL*",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        ],
    ),
    (
        "sqs.amazonaws.com",
        &["sqs:SendMessage*", "sqs:ReceiveMessage", "sqs:DeleteMessage*", "sqs:ChangeMessageVisibility*"],
    ),
    ("sns.amazonaws.com", &["sns:Publish"]),
    (
        "kinesis.amazonaws.com",
        &["kinesis:PutRecord*", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:SubscribeToShard"],
    ),
    ("secretsmanager.amazonaws.com", &[]),
];

/// What an event tells about permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// Exercised these actions (canonical names).
    Actions(Vec<String>),
    /// Needs no IAM permission.
    NoPermission,
    /// Not an action the catalogue knows (reported, never guessed).
    Unknown(String),
}

/// IAM service prefix for an eventSource.
pub fn prefix_of(event_source: &str) -> String {
    let label = event_source.strip_suffix(".amazonaws.com").unwrap_or(event_source);
    SOURCE_PREFIX
        .iter()
        .find(|(s, _)| *s == label)
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| label.split('.').next().unwrap_or(label).to_string())
}

/// Strip API version suffixes: `ListFunctions20150331` -> `ListFunctions`,
/// `GetFunction20150331v2` -> `GetFunction`, `UpdateDistribution2017_03_25` -> `UpdateDistribution`.
pub fn strip_version(name: &str) -> &str {
    let b = name.as_bytes();
    let mut end = b.len();
    // optional v<digits>
    let mut i = end;
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i < end && i > 0 && b[i - 1] == b'v' {
        end = i - 1;
    }
    let digits_or_underscores = b[..end].iter().rev().take_while(|c| c.is_ascii_digit() || **c == b'_').count();
    let start = end - digits_or_underscores;
    let tail = &name[start..end];
    let is_date = (tail.len() == 8 && tail.bytes().all(|c| c.is_ascii_digit()))
        || (tail.len() == 10 && tail.as_bytes()[4] == b'_' && tail.as_bytes()[7] == b'_');
    if is_date && start > 0 {
        &name[..start]
    } else {
        name
    }
}

/// The actions an event names before the catalogue is consulted: the renamed ones, or
/// `prefix:Name`; `None` when the call needs no permission. The SQL pack's `used.sql` does the same.
pub fn event_actions(event_source: &str, event_name: &str) -> Option<Vec<String>> {
    let prefix = prefix_of(event_source);
    let name = strip_version(event_name);
    if let Some((_, _, actions)) = RENAMES.iter().find(|(p, n, _)| *p == prefix && *n == name) {
        return Some(actions.iter().map(|a| a.to_string()).collect());
    }
    let action = format!("{prefix}:{name}");
    if NO_PERMISSION.iter().any(|a| a.eq_ignore_ascii_case(&action)) {
        return None;
    }
    Some(vec![action])
}

/// Map one event to catalogue actions.
pub fn map_event(cat: &Catalogue, event_source: &str, event_name: &str) -> Mapped {
    let Some(actions) = event_actions(event_source, event_name) else { return Mapped::NoPermission };
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        match cat.lookup(&a) {
            Some((canonical, _)) => out.push(canonical.to_string()),
            None => return Mapped::Unknown(a),
        }
    }
    Mapped::Actions(out)
}

/// Why CloudTrail cannot show the use of `action`, if it cannot. `data_sources` are the
/// eventSources the input has data events for; `read_events` whether it has any read-only event.
pub fn not_logged_reason(
    cat: &Catalogue,
    action: &str,
    data_sources: &hashbrown::HashSet<String>,
    read_events: bool,
) -> Option<String> {
    if PERMISSION_ONLY.iter().any(|a| a.eq_ignore_ascii_case(action)) {
        return Some("permission only: CloudTrail logs no call of this name".into());
    }
    let lower = action.to_ascii_lowercase();
    for (source, patterns) in DATA_PLANE {
        if patterns.iter().any(|p| super::catalogue::glob_match(p.to_ascii_lowercase().as_bytes(), lower.as_bytes()))
            && !data_sources.contains(*source)
        {
            return Some(format!("data event: the input has no data events from {source}"));
        }
    }
    if !read_events {
        let level = cat.lookup(action).map(|x| x.1);
        if matches!(level, Some(super::catalogue::Level::Read | super::catalogue::Level::List)) {
            return Some("read action: the input has no read-only events (write-only trail?)".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rename_targets_a_known_action() {
        let cat = Catalogue::get();
        for (prefix, name, actions) in RENAMES {
            for a in *actions {
                assert!(cat.lookup(a).is_some(), "{prefix} {name} -> {a} is not in the catalogue");
            }
            assert_eq!(
                map_event(cat, &format!("{prefix}.amazonaws.com"), name),
                Mapped::Actions(actions.iter().map(|a| cat.lookup(a).unwrap().0.to_string()).collect()),
                "{prefix} {name}"
            );
        }
    }

    #[test]
    fn every_prefix_exception_is_a_known_service() {
        let cat = Catalogue::get();
        for (source, prefix) in SOURCE_PREFIX {
            assert!(!cat.expand(&format!("{prefix}:*")).is_empty(), "{source} -> {prefix}");
            assert_eq!(prefix_of(&format!("{source}.amazonaws.com")), *prefix);
        }
    }

    #[test]
    fn every_permission_only_and_data_plane_entry_is_known() {
        let cat = Catalogue::get();
        for a in PERMISSION_ONLY {
            assert!(cat.lookup(a).is_some(), "{a}");
        }
        for (_, patterns) in DATA_PLANE {
            for p in *patterns {
                assert!(!cat.expand(p).is_empty(), "{p}");
            }
        }
    }

    #[test]
    fn maps_real_event_names() {
        let cat = Catalogue::get();
        let one = |s: &str, n: &str| match map_event(cat, s, n) {
            Mapped::Actions(a) => a.join(","),
            other => format!("{other:?}"),
        };
        assert_eq!(one("lambda.amazonaws.com", "ListFunctions20150331"), "lambda:ListFunctions");
        assert_eq!(one("lambda.amazonaws.com", "GetFunction20150331v2"), "lambda:GetFunction");
        assert_eq!(one("cloudfront.amazonaws.com", "UpdateDistribution2017_03_25"), "cloudfront:UpdateDistribution");
        assert_eq!(one("monitoring.amazonaws.com", "PutMetricAlarm"), "cloudwatch:PutMetricAlarm");
        assert_eq!(one("s3.amazonaws.com", "ListBuckets"), "s3:ListAllMyBuckets");
        assert_eq!(one("s3.amazonaws.com", "CopyObject"), "s3:GetObject,s3:PutObject");
        assert_eq!(one("iam.amazonaws.com", "GetUser"), "iam:GetUser");
        assert_eq!(map_event(cat, "sts.amazonaws.com", "GetCallerIdentity"), Mapped::NoPermission);
        assert!(matches!(map_event(cat, "ec2.amazonaws.com", "NoSuchCall"), Mapped::Unknown(_)));
        assert_eq!(strip_version("Describe2"), "Describe2");
    }

    #[test]
    fn not_logged_rules() {
        let cat = Catalogue::get();
        let none = hashbrown::HashSet::new();
        assert!(not_logged_reason(cat, "iam:PassRole", &none, true).is_some());
        assert!(not_logged_reason(cat, "s3:GetObject", &none, true).is_some());
        let s3: hashbrown::HashSet<String> = ["s3.amazonaws.com".to_string()].into_iter().collect();
        assert!(not_logged_reason(cat, "s3:GetObject", &s3, true).is_none());
        assert!(not_logged_reason(cat, "iam:GetUser", &none, true).is_none());
        assert!(not_logged_reason(cat, "iam:GetUser", &none, false).is_some());
        assert!(not_logged_reason(cat, "iam:CreateUser", &none, false).is_none());
    }
}
