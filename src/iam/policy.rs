//! Evaluating identity policies into the set of actions a principal is granted, the way IAM's policy
//! logic does for `Action`/`NotAction` and `Effect`, without the request context: an explicit `Deny`
//! on every resource without a condition removes an action; a `Deny` scoped to resources or under a
//! condition leaves it granted but marked partial; conditions on an `Allow` are carried as notes; a
//! permissions boundary intersects.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::catalogue::Catalogue;

/// A policy document with the name it is reported under.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    pub name: String,
    pub document: Value,
}

/// How one action is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Names of the policies whose Allow statements grant it.
    pub granted_by: BTreeSet<String>,
    /// Conditions and partial denies, for the reader.
    pub notes: BTreeSet<String>,
}

/// The granted actions (catalogue indices) and problems met on the way.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    pub actions: BTreeMap<usize, Grant>,
    pub warnings: Vec<String>,
}

/// A field that may be one string or a list of strings.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `Statement` as a list (it may be a single object).
fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// The actions a statement names: `Action` expanded, or everything but `NotAction`.
fn statement_actions(cat: &Catalogue, st: &Value) -> BTreeSet<usize> {
    if st.get("NotAction").is_some() {
        let excluded: BTreeSet<usize> = strings(st.get("NotAction")).iter().flat_map(|p| cat.expand(p)).collect();
        (0..cat.len()).filter(|i| !excluded.contains(i)).collect()
    } else {
        strings(st.get("Action")).iter().flat_map(|p| cat.expand(p)).collect()
    }
}

/// A human note for the condition keys of an Allow.
fn condition_note(cond: &Value) -> Option<String> {
    let obj = cond.as_object()?;
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for ops in obj.values() {
        if let Some(o) = ops.as_object() {
            keys.extend(o.keys().map(|k| k.to_ascii_lowercase()));
        }
    }
    if keys.is_empty() {
        return None;
    }
    if keys.iter().any(|k| k == "aws:multifactorauthpresent" || k == "aws:multifactorauthage") {
        return Some("requires MFA".into());
    }
    if keys.contains("aws:sourceip") {
        return Some("restricted by source IP".into());
    }
    if keys.contains("aws:requestedregion") {
        return Some("restricted by region".into());
    }
    Some(format!("conditional ({})", keys.into_iter().collect::<Vec<_>>().join(", ")))
}

fn is_every_resource(st: &Value) -> bool {
    st.get("NotResource").is_none() && strings(st.get("Resource")).contains(&"*")
}

/// The actions `policies` allow together, after their denies.
pub fn evaluate(cat: &Catalogue, policies: &[NamedPolicy]) -> Permissions {
    let mut perms = Permissions::default();
    let mut denies: Vec<(&NamedPolicy, &Value)> = Vec::new();
    for p in policies {
        for st in statements(&p.document) {
            match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => {
                    let note = st.get("Condition").and_then(condition_note);
                    for a in statement_actions(cat, st) {
                        let g = perms.actions.entry(a).or_default();
                        g.granted_by.insert(p.name.clone());
                        if let Some(n) = &note {
                            g.notes.insert(n.clone());
                        }
                    }
                }
                Some("Deny") => denies.push((p, st)),
                other => perms.warnings.push(format!("{}: statement with Effect {other:?} ignored", p.name)),
            }
        }
    }
    for (p, st) in denies {
        let full = is_every_resource(st) && st.get("Condition").is_none();
        for a in statement_actions(cat, st) {
            if full {
                perms.actions.remove(&a);
            } else if let Some(g) = perms.actions.get_mut(&a) {
                g.notes.insert(format!("partially denied by {} (Deny scoped to resources or conditions)", p.name));
            }
        }
    }
    perms
}

/// Keep only what the permissions boundary also allows.
pub fn apply_boundary(perms: &mut Permissions, boundary: &Permissions) {
    perms.actions.retain(|a, _| boundary.actions.contains_key(a));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(cat: &Catalogue, p: &Permissions) -> Vec<String> {
        p.actions.keys().map(|&i| cat.name(i).to_string()).collect()
    }

    fn policy(doc: Value) -> NamedPolicy {
        NamedPolicy { name: "p".into(), document: doc }
    }

    #[test]
    fn allow_wildcards_and_full_deny() {
        let cat = Catalogue::get();
        let p = evaluate(
            cat,
            &[policy(json!({"Statement": [
                {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListUsers", "s3:listallmybuckets"], "Resource": "*"},
                {"Effect": "Deny", "Action": "iam:ListUsers", "Resource": "*"}
            ]}))],
        );
        assert_eq!(names(cat, &p), vec!["iam:GetUser", "s3:ListAllMyBuckets"]);
    }

    #[test]
    fn scoped_or_conditional_deny_is_partial_and_allow_conditions_are_notes() {
        let cat = Catalogue::get();
        let p = evaluate(
            cat,
            &[
                policy(json!({"Statement": {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}})),
                policy(
                    json!({"Statement": [{"Effect": "Deny", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/x"}]}),
                ),
            ],
        );
        let g = &p.actions[&cat.index("iam:GetUser").unwrap()];
        assert!(g.notes.contains("requires MFA"));
        assert!(g.notes.iter().any(|n| n.starts_with("partially denied")));
    }

    #[test]
    fn not_action_and_boundary() {
        let cat = Catalogue::get();
        let mut p = evaluate(
            cat,
            &[policy(json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}))],
        );
        assert!(p.actions.len() > 10_000);
        assert!(!p.actions.contains_key(&cat.index("iam:GetUser").unwrap()));
        let b = evaluate(
            cat,
            &[policy(
                json!({"Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "iam:GetUser"], "Resource": "*"}]}),
            )],
        );
        apply_boundary(&mut p, &b);
        let n = names(cat, &p);
        assert!(n.contains(&"s3:GetObject".to_string()));
        assert!(n.iter().all(|a| a.starts_with("s3:Get")));
    }
}
