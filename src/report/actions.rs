//! The report's "Action items": what an access reviewer must act on, ranked by severity, each with
//! what it is, who, how many and the anchor of the section holding its evidence. Derived from the
//! report's own sections (the JSON `build` assembled), so every item's evidence is in the report and
//! its count is a number of that section.

use serde::Serialize;

use super::document::Report;

/// How urgent an item is (the order of the list: critical first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// A `detect` finding's severity.
    fn of_finding(s: &str) -> Severity {
        match s {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            _ => Severity::Low,
        }
    }

    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];
}

/// One thing to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionItem {
    pub severity: Severity,
    /// A stable name of the kind of item (see `KINDS`).
    pub kind: &'static str,
    /// What was found and what to do, in a sentence.
    pub what: String,
    /// The principal, user, account or input it is about.
    pub who: String,
    pub count: u64,
    /// What `count` counts (events, findings, actions, credentials, problems, ...).
    pub unit: &'static str,
    /// The report section (its JSON key) holding the evidence.
    pub section: &'static str,
    /// The HTML element id of the evidence (the link is `#<anchor>`).
    pub anchor: &'static str,
}

/// The `detect` checks whose findings are action items (per principal and severity). The others are
/// items through their own sections (CIS-4.2 and TS-NO-MFA-SESSION: MFA posture; CIS-4.3: root) or
/// are changes to review rather than act on.
pub const FINDING_CHECKS: [&str; 5] =
    ["TS-TRAIL-TAMPER", "TS-ROOT-ACCESS-KEY", "TS-CRED-FOR-OTHER-USER", "TS-DENIED-THEN-SUCCEEDED", "CIS-4.7"];

/// The kinds of items, in their order within a severity.
pub const KINDS: [&str; 17] = [
    "root_sign_in_without_mfa",
    "log_integrity",
    "detect_finding",
    "root_used",
    "console_sign_in_without_mfa",
    "never_used_credentials",
    "can_escalate_never_used",
    "user_without_mfa",
    "risky_grants_never_used",
    "dormant_principal",
    "calls_without_mfa",
    "key_not_rotated",
    "key_unused",
    "two_active_keys",
    "password_not_changed",
    "incomplete_evidence",
    "outside_allowed_conditions",
];

/// The distinct non-empty texts of `values`, sorted and ", "-joined.
fn distinct<'a>(values: impl Iterator<Item = Option<&'a str>>) -> String {
    let mut v: Vec<&str> = values.flatten().filter(|x| !x.is_empty()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(", ")
}

/// The text of an optional field ("" when absent).
fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// The action items of a report (its sections as `build` made them; `actions` is not read),
/// ranked: severity, then kind (`KINDS` order), then count descending, then who.
pub fn items(r: &Report) -> Vec<ActionItem> {
    let mut out = Vec::new();
    let mut add = |severity, kind, what: String, who: String, count, unit, section, anchor| {
        let who = if who.is_empty() { "(no principal)".to_string() } else { who };
        out.push(ActionItem { severity, kind, what, who, count, unit, section, anchor });
    };

    // ---- root
    let root = &r.root;
    let sm = root.summary.clone().unwrap_or_default();
    let root_who = |accounts: &[String]| {
        let accounts = distinct(accounts.iter().map(|a| Some(a.as_str())));
        if accounts.is_empty() {
            "root".to_string()
        } else {
            format!("root of {accounts}")
        }
    };
    let no_mfa = sm.console_login_success_without_mfa;
    if no_mfa > 0 {
        let who = root_who(&root.accounts.signed_in_without_mfa);
        add(
            Severity::Critical,
            "root_sign_in_without_mfa",
            "Root signed in to the console without MFA: enable MFA on the root user and find out who signed in".into(),
            who,
            no_mfa,
            "sign-ins",
            "root",
            "root-events",
        );
    }
    let used = sm.events;
    if used > 0 {
        let keys = sm.akia_key_events;
        let what = if keys > 0 {
            format!(
                "Root account used ({keys} calls with a long-term access key): delete root access keys, lock the root \
                 user away"
            )
        } else {
            "Root account used: find out why, and use IAM roles or users instead".to_string()
        };
        add(Severity::High, "root_used", what, root_who(&root.accounts.used), used, "events", "root", "root-events");
    }

    // ---- integrity and coverage of the evidence
    let scope = &r.scope;
    for i in &scope.integrity {
        let problems = i.report.problems;
        if problems > 0 {
            add(
                Severity::Critical,
                "log_integrity",
                format!(
                    "Log file integrity check failed ({}): files missing, modified or out of the digest chain",
                    i.report.verdict
                ),
                i.input.clone(),
                problems,
                "problems",
                "scope",
                "integrity",
            );
        }
    }
    let ss = &scope.summary;
    let incomplete = ss.files_failed + ss.records_rejected;
    if incomplete > 0 {
        add(
            Severity::Medium,
            "incomplete_evidence",
            format!(
                "Evidence incomplete: {} files could not be read and {} records were rejected; the review does not \
                 cover them",
                ss.files_failed, ss.records_rejected
            ),
            r.inputs.join(", "),
            incomplete,
            "files and records",
            "scope",
            "scope",
        );
    }

    // ---- detect findings: per check, principal, severity and outcome (a failed attempt is often less
    // severe than a success)
    for g in &root.finding_groups {
        let (check, principal, severity, outcome, title) =
            (g.check_id.as_str(), text(&g.principal), g.severity.as_str(), g.outcome.as_str(), g.title.as_str());
        // detect titles a failed tampering or credential call "Attempted: ..." itself.
        let what = match outcome {
            "" | "succeeded" => format!("{check}: {title}"),
            _ if title.starts_with("Attempted") => format!("{check}: {title}"),
            other => format!("{check}: {title} ({other})"),
        };
        add(
            Severity::of_finding(severity),
            "detect_finding",
            what,
            principal.to_string(),
            g.count,
            "findings",
            "root",
            "root-findings",
        );
    }

    // ---- MFA posture
    for p in &r.mfa.principals {
        let console = p.console_sign_ins_without_mfa;
        if console > 0 {
            add(
                Severity::High,
                "console_sign_in_without_mfa",
                "IAM user signed in to the console without MFA: require MFA".into(),
                text(&p.principal).to_string(),
                console,
                "sign-ins",
                "mfa",
                "mfa",
            );
        }
        let calls = p.calls_without_mfa;
        if calls > 0 {
            add(
                Severity::Medium,
                "calls_without_mfa",
                "Calls in sessions not MFA-authenticated: require MFA for the session".into(),
                text(&p.principal).to_string(),
                calls,
                "calls",
                "mfa",
                "mfa",
            );
        }
    }

    // ---- credentials (the credential report)
    if let Some(creds) = &r.credentials {
        let (keys, users) = (&creds.access_keys, &creds.users);
        let mut names: Vec<&str> =
            keys.iter().map(|k| k.user.as_str()).chain(users.iter().map(|u| u.user.as_str())).collect();
        names.sort_unstable();
        names.dedup();
        for user in names {
            let of =
                |prefix: &str| keys.iter().filter(|k| k.user == user && k.finding.starts_with(prefix)).count() as u64;
            let row = users.iter().find(|u| u.user == user);
            let password_never_used = row.is_some_and(|u| u.password_never_used);
            let never = of("active, never used") + u64::from(password_never_used);
            if never > 0 {
                add(
                    Severity::High,
                    "never_used_credentials",
                    "Credentials active but never used (access keys, console password): deactivate and delete them"
                        .into(),
                    user.to_string(),
                    never,
                    "credentials",
                    "credentials",
                    "credentials",
                );
            }
            for (kind, prefix, what) in [
                ("key_unused", "unused for", "Access key unused for a long time: deactivate it"),
                ("key_not_rotated", "not rotated", "Access key not rotated for 90 days: rotate or delete it"),
            ] {
                let count = of(prefix);
                if count > 0 {
                    add(
                        Severity::Medium,
                        kind,
                        what.into(),
                        user.to_string(),
                        count,
                        "keys",
                        "credentials",
                        "credentials",
                    );
                }
            }
            let Some(u) = row else { continue };
            if !u.mfa_active {
                let console = u.password_enabled || user == "<root_account>";
                add(
                    if console { Severity::High } else { Severity::Medium },
                    "user_without_mfa",
                    if console { "No MFA, with console access: enable MFA" } else { "No MFA device: enable MFA" }
                        .into(),
                    user.to_string(),
                    1,
                    "users",
                    "credentials",
                    "credentials",
                );
            }
            if u.active_keys == 2 {
                add(
                    Severity::Medium,
                    "two_active_keys",
                    "Two active access keys: keep one".into(),
                    user.to_string(),
                    2,
                    "keys",
                    "credentials",
                    "credentials",
                );
            }
            let age = u.password_age_days.unwrap_or(0);
            if age > super::credentials::MAX_PASSWORD_AGE_DAYS {
                add(
                    Severity::Medium,
                    "password_not_changed",
                    format!("Password not changed for {age} days: rotate it"),
                    user.to_string(),
                    age as u64,
                    "days",
                    "credentials",
                    "credentials",
                );
            }
        }
    }

    // ---- unused permissions: risky grants never used, dormant principals
    if let Some(unused) = &r.unused {
        for p in &unused.principals {
            let escalate = text(&p.remove_first);
            let risky = p.unused_risky;
            if !escalate.is_empty() {
                let actions = escalate.split_once(": ").map_or(escalate, |x| x.1);
                add(
                    Severity::High,
                    "can_escalate_never_used",
                    format!(
                        "Can escalate, never used: remove first: {actions} ({risky} risky granted actions never used in \
                         all)"
                    ),
                    p.principal.clone(),
                    actions.split(", ").count() as u64,
                    "actions",
                    "unused",
                    "unused",
                );
            } else if risky > 0 {
                add(
                    Severity::Medium,
                    "risky_grants_never_used",
                    "Risky granted actions never used (credentials or data exposure, resource policies): remove them"
                        .into(),
                    p.principal.clone(),
                    risky,
                    "actions",
                    "unused",
                    "unused",
                );
            }
        }
    }
    for p in r.principals.dormant.iter().flatten() {
        add(
            Severity::Medium,
            "dormant_principal",
            "No activity in the window although in the IAM snapshot: remove the principal or its permissions".into(),
            p.principal.clone(),
            p.granted,
            "granted actions",
            "principals",
            "dormant",
        );
    }

    // ---- policy conditions
    for p in &r.conditions.principals {
        for (count, what) in [
            (p.outside_network, "Calls from outside the allowed networks: confirm or restrict with aws:SourceIp"),
            (p.outside_hours, "Calls outside the allowed hours: confirm they were expected"),
        ] {
            if count > 0 {
                add(
                    Severity::Low,
                    "outside_allowed_conditions",
                    what.into(),
                    text(&p.principal).to_string(),
                    count,
                    "calls",
                    "conditions",
                    "conditions",
                );
            }
        }
    }

    let rank = |k: &str| KINDS.iter().position(|x| *x == k).unwrap_or(KINDS.len());
    out.sort_by(|a, b| {
        (a.severity, rank(a.kind), std::cmp::Reverse(a.count), &a.who, &a.what).cmp(&(
            b.severity,
            rank(b.kind),
            std::cmp::Reverse(b.count),
            &b.who,
            &b.what,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::{FindingGroup, RootSummary, Unused, UnusedRow};

    #[test]
    fn ranked_by_severity_then_kind() {
        let mut r = Report::default();
        r.root.summary = Some(RootSummary { events: 2, console_login_success_without_mfa: 1, ..Default::default() });
        r.root.accounts.used = vec!["111".into(), "222".into()];
        r.root.accounts.signed_in_without_mfa = vec!["111".into()];
        r.root.finding_groups = [("medium", "failed", 1), ("critical", "succeeded", 2)]
            .map(|(severity, outcome, count)| FindingGroup {
                check_id: "TS-TRAIL-TAMPER".into(),
                title: "t".into(),
                severity: severity.into(),
                principal: Some("a".into()),
                outcome: outcome.into(),
                count,
            })
            .to_vec();
        r.principals.dormant = Some(vec![UnusedRow { principal: "carol".into(), granted: 5, ..Default::default() }]);
        r.unused = Some(Unused {
            principals: vec![UnusedRow {
                principal: "bob".into(),
                unused_risky: 7,
                remove_first: Some("can escalate, never used: iam:PassRole, sts:AssumeRole".into()),
                ..Default::default()
            }],
            policies: Vec::new(),
        });
        let got: Vec<(Severity, &str, String, u64)> =
            items(&r).into_iter().map(|i| (i.severity, i.kind, i.who, i.count)).collect();
        assert_eq!(
            got,
            [
                (Severity::Critical, "root_sign_in_without_mfa", "root of 111".into(), 1),
                (Severity::Critical, "detect_finding", "a".into(), 2),
                (Severity::High, "root_used", "root of 111, 222".into(), 2),
                (Severity::High, "can_escalate_never_used", "bob".into(), 2),
                (Severity::Medium, "detect_finding", "a".into(), 1),
                (Severity::Medium, "dormant_principal", "carol".into(), 5),
            ]
        );
        assert_eq!(serde_json::to_value(Severity::Critical).unwrap(), serde_json::json!("critical"));
    }
}
