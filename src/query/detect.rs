//! `detect`: built-in checks. The CIS AWS Foundations Benchmark monitoring controls (v1.4.0 section
//! 4.1-4.15; the same metric filters back AWS Security Hub's CloudWatch.1-14) with the exact event
//! lists and conditions of their metric filters, plus detections responders expect. Every check is one
//! entry of `CHECKS`; each finding is one event row.

use polars::prelude::*;

use super::{ascending, is_denied, is_error, mfa_used, present, root::is_root_usage};
use crate::frame::col_name as c;

/// How a check selects events.
pub enum Rule {
    /// Any of these event names (optionally only from this event source).
    Events { source: Option<&'static str>, names: &'static [&'static str] },
    /// A condition on the events frame.
    Condition(fn() -> Expr),
    /// A rule over the whole frame (sequences across events).
    Frame(fn(LazyFrame) -> PolarsResult<LazyFrame>),
}

pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: &'static str,
    /// Where the definition comes from.
    pub reference: &'static str,
    pub rule: Rule,
}

/// The checks, in report order. Adding a check is adding an entry here.
pub const CHECKS: &[Check] = &[
    Check {
        id: "CIS-4.1",
        title: "Unauthorized API calls",
        severity: "medium",
        reference: "CIS 4.1 / Security Hub CloudWatch.2: errorCode *UnauthorizedOperation or AccessDenied*",
        rule: Rule::Condition(unauthorized),
    },
    Check {
        id: "CIS-4.2",
        title: "Console sign-in without MFA",
        severity: "high",
        reference:
            "CIS 4.2 / CloudWatch.3: ConsoleLogin, MFAUsed != Yes, userIdentity.type IAMUser, ConsoleLogin Success",
        rule: Rule::Condition(console_without_mfa),
    },
    Check {
        id: "CIS-4.3",
        title: "Root account usage",
        severity: "high",
        reference: "CIS 4.3 / CloudWatch.1: type Root, no invokedBy, eventType != AwsServiceEvent",
        rule: Rule::Condition(is_root_usage),
    },
    Check {
        id: "CIS-4.4",
        title: "IAM policy changes",
        severity: "medium",
        reference: "CIS 4.4 / CloudWatch.4",
        rule: Rule::Events {
            source: None,
            names: &[
                "DeleteGroupPolicy",
                "DeleteRolePolicy",
                "DeleteUserPolicy",
                "PutGroupPolicy",
                "PutRolePolicy",
                "PutUserPolicy",
                "CreatePolicy",
                "DeletePolicy",
                "CreatePolicyVersion",
                "DeletePolicyVersion",
                "AttachRolePolicy",
                "DetachRolePolicy",
                "AttachUserPolicy",
                "DetachUserPolicy",
                "AttachGroupPolicy",
                "DetachGroupPolicy",
            ],
        },
    },
    Check {
        id: "CIS-4.5",
        title: "CloudTrail configuration changes",
        severity: "high",
        reference: "CIS 4.5 / CloudWatch.5",
        rule: Rule::Events {
            source: None,
            names: &["CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"],
        },
    },
    Check {
        id: "CIS-4.6",
        title: "Console authentication failures",
        severity: "medium",
        reference: "CIS 4.6 / CloudWatch.6: ConsoleLogin with errorMessage \"Failed authentication\"",
        rule: Rule::Condition(console_auth_failure),
    },
    Check {
        id: "CIS-4.7",
        title: "Disabling or scheduled deletion of customer-managed KMS keys",
        severity: "high",
        reference: "CIS 4.7 / CloudWatch.7",
        rule: Rule::Events { source: Some("kms.amazonaws.com"), names: &["DisableKey", "ScheduleKeyDeletion"] },
    },
    Check {
        id: "CIS-4.8",
        title: "S3 bucket policy changes",
        severity: "medium",
        reference: "CIS 4.8 / CloudWatch.8",
        rule: Rule::Events {
            source: Some("s3.amazonaws.com"),
            names: &[
                "PutBucketAcl",
                "PutBucketPolicy",
                "PutBucketCors",
                "PutBucketLifecycle",
                "PutBucketReplication",
                "DeleteBucketPolicy",
                "DeleteBucketCors",
                "DeleteBucketLifecycle",
                "DeleteBucketReplication",
            ],
        },
    },
    Check {
        id: "CIS-4.9",
        title: "AWS Config configuration changes",
        severity: "medium",
        reference: "CIS 4.9 / CloudWatch.9",
        rule: Rule::Events {
            source: Some("config.amazonaws.com"),
            names: &[
                "StopConfigurationRecorder",
                "DeleteDeliveryChannel",
                "PutDeliveryChannel",
                "PutConfigurationRecorder",
            ],
        },
    },
    Check {
        id: "CIS-4.10",
        title: "Security group changes",
        severity: "medium",
        reference: "CIS 4.10 / CloudWatch.10",
        rule: Rule::Events {
            source: None,
            names: &[
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
                "RevokeSecurityGroupIngress",
                "RevokeSecurityGroupEgress",
                "CreateSecurityGroup",
                "DeleteSecurityGroup",
            ],
        },
    },
    Check {
        id: "CIS-4.11",
        title: "Network ACL changes",
        severity: "medium",
        reference: "CIS 4.11 / CloudWatch.11",
        rule: Rule::Events {
            source: None,
            names: &[
                "CreateNetworkAcl",
                "CreateNetworkAclEntry",
                "DeleteNetworkAcl",
                "DeleteNetworkAclEntry",
                "ReplaceNetworkAclEntry",
                "ReplaceNetworkAclAssociation",
            ],
        },
    },
    Check {
        id: "CIS-4.12",
        title: "Network gateway changes",
        severity: "medium",
        reference: "CIS 4.12 / CloudWatch.12",
        rule: Rule::Events {
            source: None,
            names: &[
                "CreateCustomerGateway",
                "DeleteCustomerGateway",
                "AttachInternetGateway",
                "CreateInternetGateway",
                "DeleteInternetGateway",
                "DetachInternetGateway",
            ],
        },
    },
    Check {
        id: "CIS-4.13",
        title: "Route table changes",
        severity: "medium",
        reference: "CIS 4.13 / CloudWatch.13",
        rule: Rule::Events {
            source: Some("ec2.amazonaws.com"),
            names: &[
                "CreateRoute",
                "CreateRouteTable",
                "ReplaceRoute",
                "ReplaceRouteTableAssociation",
                "DeleteRouteTable",
                "DeleteRoute",
                "DisassociateRouteTable",
            ],
        },
    },
    Check {
        id: "CIS-4.14",
        title: "VPC changes",
        severity: "medium",
        reference: "CIS 4.14 / CloudWatch.14",
        rule: Rule::Events {
            source: None,
            names: &[
                "CreateVpc",
                "DeleteVpc",
                "ModifyVpcAttribute",
                "AcceptVpcPeeringConnection",
                "CreateVpcPeeringConnection",
                "DeleteVpcPeeringConnection",
                "RejectVpcPeeringConnection",
                "AttachClassicLinkVpc",
                "DetachClassicLinkVpc",
                "DisableVpcClassicLink",
                "EnableVpcClassicLink",
            ],
        },
    },
    Check {
        id: "CIS-4.15",
        title: "AWS Organizations changes",
        severity: "medium",
        reference: "CIS 4.15",
        rule: Rule::Events {
            source: Some("organizations.amazonaws.com"),
            names: &[
                "AcceptHandshake",
                "AttachPolicy",
                "CreateAccount",
                "CreateOrganizationalUnit",
                "CreatePolicy",
                "DeclineHandshake",
                "DeleteOrganization",
                "DeleteOrganizationalUnit",
                "DeletePolicy",
                "DetachPolicy",
                "DisablePolicyType",
                "EnablePolicyType",
                "InviteAccountToOrganization",
                "LeaveOrganization",
                "MoveAccount",
                "RemoveAccountFromOrganization",
                "UpdatePolicy",
                "UpdateOrganizationalUnit",
            ],
        },
    },
    Check {
        id: "TS-TRAIL-TAMPER",
        title: "CloudTrail logging stopped, trail deleted or event selectors changed",
        severity: "critical",
        reference: "trailscope; MITRE ATT&CK T1562.008 (Impair Defenses: Disable Cloud Logs)",
        rule: Rule::Events {
            source: Some("cloudtrail.amazonaws.com"),
            names: &["StopLogging", "DeleteTrail", "PutEventSelectors"],
        },
    },
    Check {
        id: "TS-ROOT-ACCESS-KEY",
        title: "Access key created for the root user",
        severity: "critical",
        reference: "trailscope; CIS 1.4 (no root access keys)",
        rule: Rule::Condition(root_access_key_created),
    },
    Check {
        id: "TS-CRED-FOR-OTHER-USER",
        title: "Access key or console password created for another user",
        severity: "high",
        reference: "trailscope; MITRE ATT&CK T1098.001 (Additional Cloud Credentials)",
        rule: Rule::Condition(credentials_for_other_user),
    },
    Check {
        id: "TS-DENIED-THEN-SUCCEEDED",
        title: "Principal denied many times, then succeeded",
        severity: "high",
        reference: "trailscope: at least 5 authorization failures, then a successful call by the same principal",
        rule: Rule::Frame(denied_then_succeeded),
    },
];

/// CIS 4.1's filter: `($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")`.
fn unauthorized() -> Expr {
    let code = col(c::ERROR_CODE);
    code.clone()
        .str()
        .ends_with(lit("UnauthorizedOperation"))
        .or(code.str().starts_with(lit("AccessDenied")))
        .fill_null(lit(false))
}

fn console_without_mfa() -> Expr {
    super::is_console_login()
        .and(mfa_used().not())
        .and(col(c::IDENTITY_TYPE).eq(lit("IAMUser")).fill_null(lit(false)))
        .and(col(c::CONSOLE_LOGIN).eq(lit("Success")).fill_null(lit(false)))
}

fn console_auth_failure() -> Expr {
    super::is_console_login().and(col(c::ERROR_MESSAGE).eq(lit("Failed authentication")).fill_null(lit(false)))
}

/// The regular expression for `requestParameters.userName` (shared with the SQL pack; no backslashes,
/// see `SERVICE_SUFFIX_RE`).
pub const TARGET_USER_RE: &str = r#""userName" *: *"([^"]*)""#;

/// `requestParameters.userName` of IAM calls.
fn target_user() -> Expr {
    col(c::REQUEST_PARAMETERS).str().extract(lit(TARGET_USER_RE), 1)
}

fn root_access_key_created() -> Expr {
    col(c::EVENT_NAME)
        .eq(lit("CreateAccessKey"))
        .and(col(c::IDENTITY_TYPE).eq(lit("Root")))
        .and(target_user().is_null())
        .and(is_error().not())
        .fill_null(lit(false))
}

/// CreateAccessKey / CreateLoginProfile naming a user other than the caller (a role or federated
/// session creating credentials for a user always counts).
fn credentials_for_other_user() -> Expr {
    let call = col(c::EVENT_NAME).eq(lit("CreateAccessKey")).or(col(c::EVENT_NAME).eq(lit("CreateLoginProfile")));
    let caller_is_user = col(c::IDENTITY_TYPE).eq(lit("IAMUser")).fill_null(lit(false));
    let same_user = caller_is_user.and(target_user().eq(col(c::USER_NAME)).fill_null(lit(false)));
    call.and(target_user().is_not_null()).and(same_user.not()).and(is_error().not()).fill_null(lit(false))
}

/// Denials needed before a success is reported.
const DENIED_THRESHOLD: u32 = 5;

fn denied_then_succeeded(ev: LazyFrame) -> PolarsResult<LazyFrame> {
    Ok(ev
        .filter(present(c::PRINCIPAL))
        .sort([c::EVENT_TIME, c::EVENT_ID], ascending(2))
        .with_column(
            is_denied().cast(DataType::UInt32).cum_sum(false).over([col(c::PRINCIPAL)])?.alias("_denied_so_far"),
        )
        .filter(col("_denied_so_far").gt_eq(lit(DENIED_THRESHOLD)).and(is_error().not()))
        .group_by_stable([col(c::PRINCIPAL)])
        .agg([all().exclude_cols([c::PRINCIPAL]).as_expr().first()]))
}

/// The output columns of a finding.
pub const COLUMNS: [&str; 8] =
    ["check_id", "title", "severity", c::EVENT_TIME, c::PRINCIPAL, c::EVENT_NAME, c::SOURCE_IP, c::EVENT_ID];

fn select_finding(lf: LazyFrame, check: &Check) -> LazyFrame {
    lf.select([
        lit(check.id).alias("check_id"),
        lit(check.title).alias("title"),
        lit(check.severity).alias("severity"),
        col(c::EVENT_TIME),
        col(c::PRINCIPAL),
        col(c::EVENT_NAME),
        col(c::SOURCE_IP),
        col(c::EVENT_ID),
    ])
}

/// Findings of the selected checks (all when `only` is empty), by time, then check and event id.
pub fn findings(ev: LazyFrame, only: &[String]) -> PolarsResult<LazyFrame> {
    if let Some(unknown) = only.iter().find(|o| !CHECKS.iter().any(|k| o.eq_ignore_ascii_case(k.id))) {
        let ids: Vec<&str> = CHECKS.iter().map(|k| k.id).collect();
        polars::prelude::polars_bail!(InvalidOperation: "no check {unknown:?}; the checks are {}", ids.join(", "));
    }
    let ev = ev.cache();
    let mut parts = Vec::new();
    for check in CHECKS.iter().filter(|k| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(k.id))) {
        let hits = match &check.rule {
            Rule::Events { source, names } => {
                let list = Series::new("names".into(), names.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                let mut cond = col(c::EVENT_NAME).is_in(lit(list).implode(false), false).fill_null(lit(false));
                if let Some(s) = source {
                    cond = cond.and(col(c::EVENT_SOURCE).eq(lit(*s)).fill_null(lit(false)));
                }
                ev.clone().filter(cond)
            }
            Rule::Condition(f) => ev.clone().filter(f()),
            Rule::Frame(f) => f(ev.clone())?,
        };
        parts.push(select_finding(hits, check));
    }
    if parts.is_empty() {
        return Ok(select_finding(ev.clone().filter(lit(false)), &CHECKS[0]));
    }
    Ok(concat(parts, UnionArgs::default())?.sort(["event_time", "check_id", "event_id"], ascending(3)))
}

/// The list of checks as a table (for `detect --list`).
pub fn list() -> PolarsResult<DataFrame> {
    let col_of =
        |name: &str, f: fn(&Check) -> &'static str| Column::new(name.into(), CHECKS.iter().map(f).collect::<Vec<_>>());
    DataFrame::new(
        CHECKS.len(),
        vec![
            col_of("check_id", |k| k.id),
            col_of("title", |k| k.title),
            col_of("severity", |k| k.severity),
            col_of("reference", |k| k.reference),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_unique() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(CHECKS.iter().all(|k| !k.reference.is_empty()));
    }
}
