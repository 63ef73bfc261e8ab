//! The IAM snapshot: the output of `aws iam get-account-authorization-details` (one file per account;
//! several may be given). Policy documents are accepted decoded (as the CLI prints them) or
//! URL-encoded (as the raw API returns them); `Statement`, `Action`, `NotAction` and `Resource` may be
//! a single value or a list.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    pub policy_name: Option<String>,
    pub policy_arn: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    pub policy_name: String,
    pub policy_document: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Boundary {
    pub permissions_boundary_arn: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    #[serde(default)]
    pub group_list: Vec<String>,
    #[serde(default)]
    pub user_policy_list: Vec<InlinePolicy>,
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
    pub permissions_boundary: Option<Boundary>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub group_name: String,
    pub arn: String,
    #[serde(default)]
    pub group_policy_list: Vec<InlinePolicy>,
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    #[serde(default)]
    pub role_policy_list: Vec<InlinePolicy>,
    #[serde(default)]
    pub attached_managed_policies: Vec<AttachedPolicy>,
    pub permissions_boundary: Option<Boundary>,
    /// When and where IAM last saw the role used (`{}` when not in its tracking period, 400 days).
    #[serde(default)]
    pub role_last_used: Option<RoleLastUsed>,
}

/// A role's `RoleLastUsed`: kept as the snapshot writes it (an ISO 8601 date and a region).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RoleLastUsed {
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_used_date: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub region: Option<String>,
}

/// A string, or nothing for null or any other JSON value (a snapshot is input: never a reason to stop).
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersion {
    pub document: Value,
    pub version_id: String,
    #[serde(default)]
    pub is_default_version: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedPolicy {
    pub policy_name: String,
    pub arn: String,
    pub default_version_id: Option<String>,
    #[serde(default)]
    pub policy_version_list: Vec<PolicyVersion>,
}

impl ManagedPolicy {
    /// The default version's document (by `DefaultVersionId`, else the one flagged default).
    pub fn default_document(&self) -> Option<&Value> {
        let by_id = self
            .default_version_id
            .as_ref()
            .and_then(|id| self.policy_version_list.iter().find(|v| &v.version_id == id));
        by_id.or_else(|| self.policy_version_list.iter().find(|v| v.is_default_version)).map(|v| &v.document)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizationDetails {
    #[serde(default)]
    pub user_detail_list: Vec<User>,
    #[serde(default)]
    pub group_detail_list: Vec<Group>,
    #[serde(default)]
    pub role_detail_list: Vec<Role>,
    #[serde(default)]
    pub policies: Vec<ManagedPolicy>,
}

impl AuthorizationDetails {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let not_authz =
            |why: String| Error::Usage(format!("{}: not an authorization-details file: {why}", path.display()));
        // Every field has a default, so any JSON object would parse: require one of its lists.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| not_authz(e.to_string()))?;
        const LISTS: [&str; 4] = ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"];
        if !LISTS.iter().any(|k| value.get(k).is_some()) {
            return Err(not_authz(format!(
                "it has none of {} (the output of `aws iam get-account-authorization-details`)",
                LISTS.join(", ")
            )));
        }
        serde_json::from_value(value).map_err(|e| not_authz(e.to_string()))
    }

    /// Merge several files (one per account).
    pub fn merge(&mut self, other: AuthorizationDetails) {
        self.user_detail_list.extend(other.user_detail_list);
        self.group_detail_list.extend(other.group_detail_list);
        self.role_detail_list.extend(other.role_detail_list);
        self.policies.extend(other.policies);
    }

    pub fn policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.policies.iter().find(|p| p.arn == arn)
    }

    /// The group of `name` in the same account as `principal_arn`.
    pub fn group(&self, name: &str, principal_arn: &str) -> Option<&Group> {
        let account = account_of(principal_arn);
        self.group_detail_list.iter().find(|g| g.group_name == name && account_of(&g.arn) == account)
    }
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// A policy document as JSON: decoded already, or a URL-encoded JSON string.
pub fn document(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let decoded = percent_decode(s)?;
            serde_json::from_str(&decoded).map_err(|e| format!("policy document is not JSON: {e}"))
        }
        Value::Object(_) => Ok(v.clone()),
        _ => Err("policy document is neither an object nor a string".into()),
    }
}

/// RFC 3986 percent-decoding (`+` is left as is: IAM encodes spaces as %20).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated %-escape in policy document")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "policy document is not UTF-8 after decoding".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_and_decoded_documents() {
        let enc = Value::String("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D".into());
        let dec = document(&enc).unwrap();
        assert_eq!(dec["Version"], "2012-10-17");
        let obj = serde_json::json!({"Statement": []});
        assert_eq!(document(&obj).unwrap(), obj);
        assert!(document(&Value::String("%7".into())).is_err());
    }
}
