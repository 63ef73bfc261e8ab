//! What a granted action allows, for ranking unused permissions (#14 "risk first"): the categories
//! Cloudsplaining (Salesforce, BSD-3) reports, as lists of actions and access levels:
//!
//! - **privilege escalation**: actions that let a principal grant itself more (Rhino Security Labs'
//!   IAM privilege-escalation methods, which Cloudsplaining checks): new policy versions, attaching
//!   or writing policies, passing roles to compute, creating keys or passwords for others, trust
//!   policy changes;
//! - **credentials exposure**: actions that return credentials (Cloudsplaining's list);
//! - **data exfiltration**: actions that read stored data out (Cloudsplaining's list: S3 objects,
//!   SSM parameters, secrets);
//! - **resource exposure**: any action of the "Permissions management" access level (it can change
//!   who may use a resource: bucket policies, key policies, ...);
//! - **infrastructure modification**: any other "Write" action.
//!
//! The first four are what an access review removes first when they were never used.

use crate::iam::catalogue::Level;

/// A risk category, in the order of how much it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Risk {
    PrivilegeEscalation,
    CredentialsExposure,
    DataExfiltration,
    ResourceExposure,
    InfrastructureModification,
}

impl Risk {
    pub fn name(self) -> &'static str {
        match self {
            Risk::PrivilegeEscalation => "privilege_escalation",
            Risk::CredentialsExposure => "credentials_exposure",
            Risk::DataExfiltration => "data_exfiltration",
            Risk::ResourceExposure => "resource_exposure",
            Risk::InfrastructureModification => "infrastructure_modification",
        }
    }

    /// The categories an access review removes first when unused (all but infrastructure changes).
    pub fn is_severe(self) -> bool {
        self != Risk::InfrastructureModification
    }
}

/// Privilege escalation (Rhino Security Labs' methods, as Cloudsplaining checks them).
pub const PRIVILEGE_ESCALATION: &[&str] = &[
    "iam:AddUserToGroup",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreatePolicyVersion",
    "iam:PassRole",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateLoginProfile",
    "cloudformation:CreateStack",
    "datapipeline:CreatePipeline",
    "glue:CreateDevEndpoint",
    "glue:UpdateDevEndpoint",
    "lambda:CreateFunction",
    "lambda:UpdateFunctionCode",
    "sts:AssumeRole",
];

/// Credentials exposure (Cloudsplaining's list).
pub const CREDENTIALS_EXPOSURE: &[&str] = &[
    "chime:CreateApiKey",
    "codepipeline:PollForJobs",
    "cognito-identity:GetCredentialsForIdentity",
    "cognito-identity:GetOpenIdToken",
    "cognito-identity:GetOpenIdTokenForDeveloperIdentity",
    "connect:GetFederationToken",
    "ec2:GetPasswordData",
    "ecr:GetAuthorizationToken",
    "gamelift:GetInstanceAccess",
    "gamelift:RequestUploadCredentials",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreateServiceSpecificCredential",
    "iam:ResetServiceSpecificCredential",
    "iam:UpdateAccessKey",
    "lightsail:GetInstanceAccessDetails",
    "lightsail:GetRelationalDatabaseMasterUserPassword",
    "mediapackage:RotateChannelCredentials",
    "mediapackage:RotateIngestEndpointCredentials",
    "rds-db:connect",
    "redshift:GetClusterCredentials",
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
    "sts:GetFederationToken",
    "sts:GetSessionToken",
];

/// Data exfiltration (Cloudsplaining's list).
pub const DATA_EXFILTRATION: &[&str] = &[
    "s3:GetObject",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
];

/// The categories of `action` (as the catalogue spells it) at access level `level`, most severe first.
pub fn classify(action: &str, level: Level) -> Vec<Risk> {
    let listed = |list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(action));
    let mut out = Vec::new();
    if listed(PRIVILEGE_ESCALATION) {
        out.push(Risk::PrivilegeEscalation);
    }
    if listed(CREDENTIALS_EXPOSURE) {
        out.push(Risk::CredentialsExposure);
    }
    if listed(DATA_EXFILTRATION) {
        out.push(Risk::DataExfiltration);
    }
    match level {
        Level::Permissions => out.push(Risk::ResourceExposure),
        Level::Write if out.is_empty() => out.push(Risk::InfrastructureModification),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::catalogue::Catalogue;

    #[test]
    fn every_listed_action_is_in_the_catalogue() {
        let cat = Catalogue::get();
        for a in PRIVILEGE_ESCALATION.iter().chain(CREDENTIALS_EXPOSURE).chain(DATA_EXFILTRATION) {
            assert!(cat.index(a).is_some(), "{a} is not an IAM action of the catalogue");
        }
    }

    #[test]
    fn categories_of_known_actions() {
        let cat = Catalogue::get();
        let of = |a: &str| classify(a, cat.level(cat.index(a).unwrap()));
        assert_eq!(of("iam:PassRole"), [Risk::PrivilegeEscalation, Risk::ResourceExposure]);
        assert_eq!(
            of("iam:CreateAccessKey"),
            [Risk::PrivilegeEscalation, Risk::CredentialsExposure, Risk::ResourceExposure]
        );
        assert_eq!(of("s3:GetObject"), [Risk::DataExfiltration]);
        assert_eq!(of("s3:PutBucketPolicy"), [Risk::ResourceExposure]);
        assert_eq!(of("ec2:RunInstances"), [Risk::InfrastructureModification]);
        assert!(of("iam:ListUsers").is_empty());
    }
}
