//! The report as one self-contained HTML file: inline CSS, one small inline script (copy buttons),
//! inline SVG charts, no URL to fetch. A Content-Security-Policy forbids every fetch but the inline
//! style and the script (by its hash), so opening the file never reaches the network. Rendered from
//! the report's JSON only; every text from the logs is escaped.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::markup::esc;
use super::svg;

const CSS: &str = r#"
:root{color-scheme:light}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a202c;background:#fff;margin:0 auto;max-width:1010px;padding:24px}
header h1{font-size:26px;margin:0 0 4px}
.meta{color:#4a5568;font-size:12px;margin:2px 0}
nav{margin:14px 0 8px;padding:8px 12px;border:1px solid #e2e8f0;border-radius:4px}
nav ol{columns:3;margin:0;padding-left:20px}
nav a{color:#2b6cb0;text-decoration:none}
section{margin:30px 0 40px}
h2{font-size:20px;border-bottom:2px solid #2b6cb0;padding-bottom:4px;margin:0 0 6px}
h3{font-size:15px;margin:18px 0 6px}
p.lead{margin:4px 0 10px;color:#2d3748}
.note{color:#4a5568;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0 12px}
th,td{border-bottom:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.w{overflow-wrap:anywhere;min-width:9em}
td.p{overflow-wrap:anywhere;min-width:13em}
td.t{white-space:nowrap}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 12px}
.kpi{border:1px solid #cbd5e0;border-radius:4px;padding:6px 10px;min-width:118px}
.kpi b{display:block;font-size:19px}
.kpi span{font-size:11px;color:#4a5568}
.kpi.bad{border-color:#c53030;border-width:2px}
.kpi.bad b{color:#c53030}
.kpi.good b{color:#276749}
svg.chart{max-width:100%;height:auto;display:block;margin:10px 0}
svg .ct{font:600 13px system-ui,sans-serif;fill:#1a202c}
svg .lb,svg .vl,svg .lg{font:11px system-ui,sans-serif;fill:#2d3748}
svg .tk{font:10px system-ui,sans-serif;fill:#4a5568}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:8px;font-size:11px;white-space:pre-wrap;word-break:break-all;margin:4px 0}
details{margin:4px 0}
summary{cursor:pointer;color:#2b6cb0}
button{font-size:11px;padding:2px 8px;border:1px solid #a0aec0;background:#fff;border-radius:3px;cursor:pointer}
.sev-critical{color:#9b2c2c;font-weight:700}
.sev-high{color:#c53030;font-weight:600}
.sev-medium{color:#b7791f}
.skip{color:#718096;font-style:italic}
footer{margin-top:30px;color:#718096;font-size:11px;border-top:1px solid #e2e8f0;padding-top:6px}
@page{margin:12mm}
@media print{
  body{max-width:none;padding:0;font-size:11px}
  nav,button{display:none}
  section{break-before:page;margin:0}
  section#actions{break-before:auto}
  h2,h3{break-after:avoid}
  tr,svg.chart,.kpis,pre{break-inside:avoid}
  thead{display:table-header-group}
  td.p{min-width:12em}
  td.w{min-width:7em}
  pre.policy{column-count:3;column-gap:12px;font-size:8px;white-space:pre}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  a{color:inherit;text-decoration:none}
}
"#;

const SCRIPT: &str = r#"(function(){
function done(b){b.textContent='Copied';setTimeout(function(){b.textContent='Copy'},1500)}
function select(p,b){var r=document.createRange();r.selectNodeContents(p);var s=window.getSelection();s.removeAllRanges();s.addRange(r);try{if(document.execCommand('copy'))done(b)}catch(e){}}
document.addEventListener('click',function(e){var b=e.target.closest('button[data-copy]');if(!b)return;var p=document.getElementById(b.getAttribute('data-copy'));if(!p)return;
if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(p.textContent).then(function(){done(b)},function(){select(p,b)})}else{select(p,b)}});
function openHash(){var id=decodeURIComponent(location.hash.slice(1));var d=id&&document.getElementById(id);if(d&&d.tagName==='DETAILS')d.open=true}
window.addEventListener('hashchange',openHash);openHash();
window.addEventListener('beforeprint',function(){document.querySelectorAll('details:not(.long)').forEach(function(d){d.open=true})});
})();"#;

/// Rows shown before the rest of a table folds into "all N rows".
const SHOWN: usize = 25;

/// The text at `k` of a report object ("" when absent): the report helpers' shared reader.
pub(super) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The list at `k` of a report object (empty when absent).
pub(super) fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        other => other.to_string(),
    }
}

/// Columns whose values are long identifiers (wrap anywhere).
fn is_wide(key: &str) -> bool {
    matches!(
        key,
        "principal"
            | "arn"
            | "member"
            | "group_arn"
            | "user_agent"
            | "sample_error_message"
            | "error_message"
            | "warnings"
            | "top_services"
            | "top_actions"
            | "path"
            | "reason"
            | "detail"
            | "digest"
            | "session_id"
            | "target"
            | "sample_ips"
            | "granted_by"
            | "note"
            | "findings"
            | "finding"
            | "what"
            | "who"
    )
}

/// A table of `rows` with the given (key, header) columns; past `SHOWN` rows, the rest folds.
fn table(rows: &[Value], cols: &[(&str, &str)]) -> String {
    table_with(rows, cols, &|_, _| None)
}

/// `table` where `custom(row, key)` may give a cell's HTML.
fn table_with(rows: &[Value], cols: &[(&str, &str)], custom: &dyn Fn(&Value, &str) -> Option<String>) -> String {
    if rows.is_empty() {
        return "<p class=\"note\">No rows.</p>".into();
    }
    let numeric = |key: &str| rows.iter().any(|r| r.get(key).is_some_and(Value::is_number));
    let head = |out: &mut String| {
        out.push_str("<table><thead><tr>");
        for (key, h) in cols {
            let _ = write!(out, "<th{}>{}</th>", if numeric(key) { " class=\"n\"" } else { "" }, esc(h));
        }
        out.push_str("</tr></thead><tbody>");
    };
    let body = |out: &mut String, part: &[Value]| {
        for r in part {
            out.push_str("<tr>");
            for (key, _) in cols {
                let v = r.get(*key).unwrap_or(&Value::Null);
                let class = if v.is_number() {
                    " class=\"n\""
                } else if matches!(*key, "principal" | "member" | "arn") {
                    " class=\"p\""
                } else if is_wide(key) {
                    " class=\"w\""
                } else if key.ends_with("_time") || key.ends_with("_seen") || key.starts_with("last_") {
                    " class=\"t\""
                } else {
                    ""
                };
                let content = custom(r, key).unwrap_or_else(|| long_text(&cell_text(v)));
                let _ = write!(out, "<td{class}>{content}</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    };
    let mut out = String::new();
    head(&mut out);
    body(&mut out, &rows[..rows.len().min(SHOWN)]);
    if rows.len() > SHOWN {
        let _ = write!(out, "<details><summary>all {} rows ({} more)</summary>", rows.len(), rows.len() - SHOWN);
        head(&mut out);
        body(&mut out, &rows[SHOWN..]);
        out.push_str("</details>");
    }
    out
}

/// A cell's text; past 160 characters, the first 100 with the rest folded (and left folded in print).
fn long_text(t: &str) -> String {
    if t.chars().count() <= 160 {
        return esc(t);
    }
    let head: String = t.chars().take(100).collect();
    format!("<details class=\"long\"><summary>{}…</summary>{}</details>", esc(&head), esc(t))
}

fn kpi(out: &mut String, label: &str, value: &str, class: &str) {
    let _ = write!(out, "<div class=\"kpi {class}\"><b>{}</b><span>{}</span></div>", esc(value), esc(label));
}

fn num_text(v: &Value, k: &str) -> String {
    cell_text(v.get(k).unwrap_or(&Value::Null))
}

fn bad_if(v: &Value, k: &str) -> &'static str {
    if n(v, k) > 0.0 {
        "bad"
    } else {
        "good"
    }
}

fn series_rows(ot: &Value) -> (Vec<(String, Vec<f64>)>, Vec<String>) {
    let names: Vec<String> = arr(ot, "series").iter().map(|x| x.as_str().unwrap_or("").to_string()).collect();
    let rows =
        arr(ot, "rows").iter().map(|r| (s(r, "bucket").to_string(), names.iter().map(|k| n(r, k)).collect())).collect();
    (rows, names)
}

fn timechart(title: &str, ot: &Value) -> String {
    let (rows, names) = series_rows(ot);
    let names: Vec<&str> = names.iter().map(|x| x.as_str()).collect();
    let label: Vec<String> = names.iter().map(|x| x.replace('_', " ")).collect();
    let label: Vec<&str> = label.iter().map(String::as_str).collect();
    let _ = names;
    svg::timebars(&format!("{title} (per {})", s(ot, "bucket")), &rows, &label)
}

fn section_open(out: &mut String, id: &str, title: &str, lead: &str) {
    let _ = write!(out, "<section id=\"{id}\"><h2>{}</h2><p class=\"lead\">{}</p>", esc(title), lead);
}

/// The short name of an ARN (after the last `/` or `:`), for chart labels.
fn short_name(arn: &str) -> String {
    if arn.starts_with("arn:") {
        let account = arn.split(':').nth(4).unwrap_or("");
        let tail = arn.rsplit(['/', ':']).next().unwrap_or(arn);
        let kind = arn.split(':').nth(5).and_then(|r| r.split('/').next()).unwrap_or("");
        if account.is_empty() {
            return tail.to_string();
        }
        format!("{tail} ({kind} {account})")
    } else {
        arn.to_string()
    }
}

/// The title of a section, by id (the navigation's and the action items' links).
fn section_title(id: &str) -> &'static str {
    match id {
        "actions" => "Action items",
        "scope" => "Scope",
        "root" => "Root account",
        "principals" => "Principals",
        "mfa" => "MFA posture",
        "failures" => "Failed requests",
        "unused" => "Unused permissions",
        "credentials" => "Credentials",
        "sessions" => "Sessions",
        "conditions" => "Policy conditions",
        _ => "",
    }
}

fn actions(out: &mut String, r: &Value) {
    let a = &r["actions"];
    section_open(
        out,
        "actions",
        "Action items",
        "What this review must act on, most severe first: root sign-ins without MFA, trail tampering, never-used \
         credentials, grants that can escalate privileges and were never used, and the other findings below. Each \
         item links to the section holding its evidence; its count is that section's number.",
    );
    let counts = &a["counts"];
    out.push_str("<div class=\"kpis\">");
    for sev in ["critical", "high", "medium", "low"] {
        let class = if sev == "critical" || sev == "high" { bad_if(counts, sev) } else { "" };
        kpi(out, sev, &num_text(counts, sev), class);
    }
    out.push_str("</div>");
    let rows: Vec<(String, Vec<f64>)> =
        ["critical", "high", "medium", "low"].iter().map(|sev| (sev.to_string(), vec![n(counts, sev)])).collect();
    out.push_str(&svg::hbars("Action items by severity", &rows, &["items"]));
    out.push_str(&table_with(
        arr(a, "items"),
        &[("severity", "severity"), ("what", "what"), ("who", "who"), ("count", "count"), ("anchor", "evidence")],
        &|row, key| match key {
            "severity" => Some(format!("<span class=\"sev-{0}\">{0}</span>", esc(s(row, "severity")))),
            "count" => Some(format!("{} {}", esc(&num_text(row, "count")), esc(s(row, "unit")))),
            "anchor" => {
                Some(format!("<a href=\"#{}\">{}</a>", esc(s(row, "anchor")), esc(section_title(s(row, "section")))))
            }
            _ => None,
        },
    ));
    out.push_str("</section>");
}

fn scope(out: &mut String, r: &Value) {
    let sc = &r["scope"];
    let sm = &sc["summary"];
    section_open(
        out,
        "scope",
        "Scope",
        "What was read: the evidence of coverage. Files and events are counted as <code>trailscope scan</code> counts \
         them; the same eventID delivered twice counts once.",
    );
    out.push_str("<div class=\"kpis\">");
    for (label, key) in
        [("events", "events"), ("accounts", "accounts"), ("regions", "regions"), ("files read", "files")]
    {
        kpi(out, label, &num_text(sm, key), "");
    }
    kpi(out, "files skipped", &num_text(sm, "files_skipped"), "");
    kpi(out, "files failed", &num_text(sm, "files_failed"), bad_if(sm, "files_failed"));
    kpi(out, "records rejected", &num_text(sm, "records_rejected"), bad_if(sm, "records_rejected"));
    kpi(out, "duplicates dropped", &num_text(sm, "duplicates"), "");
    kpi(out, "first event", s(sm, "first_event_time"), "");
    kpi(out, "last event", s(sm, "last_event_time"), "");
    for i in arr(sc, "integrity") {
        let class = if n(i, "problems") > 0.0 { "bad" } else { "good" };
        kpi(out, &format!("integrity of {}", s(i, "input")), s(i, "verdict"), class);
    }
    out.push_str("</div>");
    out.push_str(&timechart("Events over time", &sc["over_time"]));
    let accounts: Vec<(String, Vec<f64>)> =
        arr(sc, "by_account").iter().take(20).map(|a| (s(a, "key").to_string(), vec![n(a, "events")])).collect();
    out.push_str(&svg::hbars("Events by account (first 20 by account id)", &accounts, &["events"]));
    out.push_str("<div class=\"cols\"><div><h3>Accounts</h3>");
    out.push_str(&table(arr(sc, "by_account"), &[("key", "account"), ("events", "events")]));
    out.push_str("</div><div><h3>Regions</h3>");
    out.push_str(&table(arr(sc, "by_region"), &[("key", "region"), ("events", "events")]));
    out.push_str("</div></div>");
    out.push_str("<h3 id=\"integrity\">Log file integrity</h3>");
    if arr(sc, "integrity").is_empty() {
        out.push_str(
            "<p class=\"note\">No input holds CloudTrail-Digest files: integrity was not checked (pull with digests and \
             run <code>trailscope verify</code>).</p>",
        );
    } else {
        out.push_str(&table(
            arr(sc, "integrity"),
            &[
                ("input", "input"),
                ("verdict", "verdict"),
                ("digests", "digests"),
                ("log_files", "log files"),
                ("log_files_verified", "verified"),
                ("problems", "problems"),
            ],
        ));
        let findings: Vec<Value> =
            arr(sc, "integrity").iter().flat_map(|i| arr(i, "findings").iter().cloned()).collect();
        if !findings.is_empty() {
            out.push_str(&table(&findings, &[("kind", "kind"), ("path", "path"), ("detail", "detail")]));
        }
    }
    for (key, title) in [("failed", "Failed files"), ("skipped", "Skipped files")] {
        if !arr(sc, key).is_empty() {
            let _ = write!(out, "<h3>{title}</h3>");
            out.push_str(&table(arr(sc, key), &[("path", "path"), ("reason", "reason")]));
        }
    }
    if !arr(sc, "rejected").is_empty() {
        out.push_str("<h3>Rejected records</h3>");
        out.push_str(&table(arr(sc, "rejected"), &[("path", "path"), ("records", "records"), ("reason", "reason")]));
    }
    out.push_str("</section>");
}

fn root(out: &mut String, r: &Value) {
    let ro = &r["root"];
    let sm = &ro["summary"];
    section_open(
        out,
        "root",
        "Root account",
        "Root-account use under CIS semantics (type Root, no invokedBy, not a service event), as <code>trailscope \
         root</code> reports it; and the findings of every built-in check (<code>trailscope detect</code>).",
    );
    out.push_str("<div class=\"kpis\">");
    kpi(out, "root events", &num_text(sm, "events"), bad_if(sm, "events"));
    kpi(out, "console sign-ins", &num_text(sm, "console_logins"), "");
    kpi(
        out,
        "sign-ins with MFA",
        &format!("{}", n(sm, "console_login_success") - n(sm, "console_login_success_without_mfa")),
        "",
    );
    kpi(
        out,
        "sign-ins without MFA",
        &num_text(sm, "console_login_success_without_mfa"),
        bad_if(sm, "console_login_success_without_mfa"),
    );
    kpi(out, "failed sign-ins", &num_text(sm, "console_login_failure"), bad_if(sm, "console_login_failure"));
    kpi(out, "access-key calls", &num_text(sm, "access_key_events"), bad_if(sm, "access_key_events"));
    kpi(out, "long-term key (AKIA)", &num_text(sm, "akia_key_events"), bad_if(sm, "akia_key_events"));
    kpi(out, "temporary key (ASIA)", &num_text(sm, "asia_key_events"), "");
    kpi(out, "source IPs", &num_text(sm, "source_ips"), "");
    out.push_str("</div>");
    out.push_str(&timechart("Root events over time", &ro["over_time"]));
    let signins = vec![(
        "root console sign-ins".to_string(),
        vec![
            n(sm, "console_login_success") - n(sm, "console_login_success_without_mfa"),
            n(sm, "console_login_success_without_mfa"),
            n(sm, "console_login_failure"),
        ],
    )];
    out.push_str(&svg::hbars("Root sign-ins", &signins, &["with MFA", "without MFA", "failed"]));
    let checks: Vec<(String, Vec<f64>)> = arr(ro, "checks")
        .iter()
        .map(|c| {
            let label = format!("{} {}", s(c, "check_id"), s(c, "title"));
            (label, vec![n(c, "findings")])
        })
        .collect();
    out.push_str(&svg::hbars("Findings per check (trailscope detect)", &checks, &["findings"]));
    out.push_str("<h3>Checks</h3>");
    out.push_str(&table_with(
        arr(ro, "checks"),
        &[("check_id", "check"), ("title", "title"), ("severity", "severity"), ("findings", "findings")],
        &|row, key| match key {
            "severity" => Some(format!("<span class=\"sev-{0}\">{0}</span>", esc(s(row, "severity")))),
            "findings" if row["skipped"] == true => {
                Some("<span class=\"skip\">skipped (needs its flag)</span>".to_string())
            }
            _ => None,
        },
    ));
    out.push_str("<h3 id=\"root-findings\">Findings to act on</h3>");
    out.push_str(
        "<p class=\"note\">The findings of the checks listed in the action items (trail tampering, root access keys, \
         credentials created for others, denied then succeeded, KMS keys disabled), as <code>trailscope detect</code> \
         reports them.</p>",
    );
    out.push_str(&table_with(
        arr(ro, "findings"),
        &[
            ("event_time", "time"),
            ("check_id", "check"),
            ("severity", "severity"),
            ("principal", "principal"),
            ("event_name", "event"),
            ("source_ip", "source IP"),
            ("outcome", "outcome"),
        ],
        &|row, key| (key == "severity").then(|| format!("<span class=\"sev-{0}\">{0}</span>", esc(s(row, "severity")))),
    ));
    out.push_str("<h3 id=\"root-events\">Root events</h3>");
    out.push_str(&table(
        arr(ro, "events"),
        &[
            ("event_time", "time"),
            ("recipient_account_id", "account"),
            ("event_name", "event"),
            ("source_ip", "source IP"),
            ("error_code", "error"),
            ("access_key_id", "access key"),
            ("console_login", "sign-in"),
            ("mfa_used", "MFA"),
        ],
    ));
    out.push_str("</section>");
}

fn principals(out: &mut String, r: &Value) {
    let p = &r["principals"];
    section_open(
        out,
        "principals",
        "Principals",
        "Who did what (<code>trailscope activity</code>); principals of the IAM snapshot with no activity in the window; \
         and per IAM group, its members and what they did (<code>trailscope activity --by group --iam</code>).",
    );
    let rows: Vec<(String, Vec<f64>)> = arr(p, "activity")
        .iter()
        .take(20)
        .map(|a| (short_name(s(a, "principal")), vec![n(a, "events") - n(a, "errors"), n(a, "errors")]))
        .collect();
    out.push_str(&svg::hbars("Events per principal (the 20 busiest)", &rows, &["succeeded", "failed"]));
    out.push_str("<h3>Activity per principal</h3>");
    out.push_str(&table(
        arr(p, "activity"),
        &[
            ("principal", "principal"),
            ("principal_type", "type"),
            ("events", "events"),
            ("errors", "errors"),
            ("last_seen", "last seen"),
            ("services", "services"),
            ("actions", "actions"),
            ("source_ips", "IPs"),
            ("top_services", "top services"),
        ],
    ));
    out.push_str("<h3 id=\"dormant\">Dormant principals</h3>");
    if p.get("dormant").is_none() {
        out.push_str("<p class=\"note\">Give the IAM snapshot (<code>--iam AUTHZ.json</code>) to list dormant users and roles and the groups.</p>");
    } else {
        out.push_str(
            "<p class=\"note\">In the IAM snapshot, with no activity in the window: candidates for removal.</p>",
        );
        out.push_str(&table(
            arr(p, "dormant"),
            &[
                ("principal", "principal"),
                ("principal_type", "type"),
                ("granted", "granted actions"),
                ("warnings", "warnings"),
            ],
        ));
        let groups: Vec<(String, Vec<f64>)> = arr(p, "groups")
            .iter()
            .map(|g| {
                (
                    format!("{} (members: {})", s(g, "group"), num_text(g, "members")),
                    vec![n(g, "events") - n(g, "errors"), n(g, "errors")],
                )
            })
            .collect();
        out.push_str(&svg::hbars("Events per IAM group (by its members)", &groups, &["succeeded", "failed"]));
        out.push_str("<h3>IAM groups</h3>");
        out.push_str(&table(
            arr(p, "groups"),
            &[
                ("group", "group"),
                ("members", "members"),
                ("active_members", "active"),
                ("events", "events"),
                ("errors", "errors"),
                ("last_seen", "last seen"),
                ("top_actions", "top actions"),
            ],
        ));
        out.push_str("<h3>Group members</h3>");
        out.push_str(&table(
            arr(p, "group_members"),
            &[
                ("group", "group"),
                ("member", "member"),
                ("events", "events"),
                ("errors", "errors"),
                ("last_seen", "last seen"),
                ("top_services", "top services"),
            ],
        ));
        out.push_str("<h3>What each group did</h3>");
        out.push_str(&table(
            arr(p, "group_by_action"),
            &[
                ("group", "group"),
                ("service", "service"),
                ("event_name", "action"),
                ("events", "events"),
                ("errors", "errors"),
                ("members", "members"),
                ("last_seen", "last seen"),
            ],
        ));
    }
    out.push_str("</section>");
}

fn mfa(out: &mut String, r: &Value) {
    let m = &r["mfa"];
    section_open(
        out,
        "mfa",
        "MFA posture",
        "IAM users who signed in to the console without MFA (check CIS-4.2) or made calls in a session that was not \
         MFA-authenticated (check TS-NO-MFA-SESSION): <code>trailscope detect --check CIS-4.2 --check TS-NO-MFA-SESSION</code>.",
    );
    let rows: Vec<(String, Vec<f64>)> = arr(m, "principals")
        .iter()
        .take(20)
        .map(|a| (short_name(s(a, "principal")), vec![n(a, "console_sign_ins_without_mfa"), n(a, "calls_without_mfa")]))
        .collect();
    out.push_str(&svg::hbars("Activity without MFA per IAM user", &rows, &["console sign-ins", "calls in sessions"]));
    out.push_str(&table(
        arr(m, "principals"),
        &[
            ("principal", "principal"),
            ("console_sign_ins_without_mfa", "console sign-ins without MFA"),
            ("calls_without_mfa", "calls without MFA"),
            ("source_ips", "source IPs"),
            ("first_seen", "first"),
            ("last_seen", "last"),
        ],
    ));
    out.push_str("<h3>Console sign-ins without MFA</h3>");
    out.push_str(&table(
        arr(m, "console_sign_ins"),
        &[("event_time", "time"), ("principal", "principal"), ("source_ip", "source IP")],
    ));
    out.push_str("</section>");
}

fn failures(out: &mut String, r: &Value) {
    let f = &r["failures"];
    section_open(
        out,
        "failures",
        "Failed requests",
        "Requests that failed (<code>trailscope failures</code>), the authorization denials among them \
         (<code>--denied</code>), and failed console sign-ins.",
    );
    out.push_str(&timechart("Failed requests over time", &f["over_time"]));
    let rows: Vec<(String, Vec<f64>)> = arr(f, "failures")
        .iter()
        .take(15)
        .map(|a| {
            let action = s(a, "event_source").trim_end_matches(".amazonaws.com").to_string() + ":" + s(a, "event_name");
            let who = s(a, "principal").rsplit(['/', ':']).next().unwrap_or("");
            (format!("{who} · {action} · {}", s(a, "error_code")), vec![n(a, "count")])
        })
        .collect();
    out.push_str(&svg::hbars("Top (principal, action, error) pairs", &rows, &["count"]));
    let cols = [
        ("principal", "principal"),
        ("event_name", "action"),
        ("error_code", "error"),
        ("count", "count"),
        ("last_seen", "last seen"),
        ("sample_error_message", "sample message"),
    ];
    // The action as service:EventName (the JSON keeps event_source and event_name apart).
    let action = |row: &Value, key: &str| {
        (key == "event_name").then(|| {
            esc(&format!("{}:{}", s(row, "event_source").trim_end_matches(".amazonaws.com"), s(row, "event_name")))
        })
    };
    out.push_str("<h3>Failures</h3>");
    out.push_str(&table_with(arr(f, "failures"), &cols, &action));
    out.push_str("<h3>Authorization denials</h3>");
    out.push_str(&table_with(
        arr(f, "denied"),
        &[
            ("principal", "principal"),
            ("event_name", "action"),
            ("error_code", "error"),
            ("denial", "denial"),
            ("policy_type", "policy"),
            ("count", "count"),
            ("last_seen", "last seen"),
        ],
        &action,
    ));
    out.push_str("<h3>Console sign-in failures</h3>");
    out.push_str(&table(
        arr(f, "console_sign_in_failures"),
        &[
            ("event_time", "time"),
            ("user_name", "user"),
            ("principal", "principal"),
            ("source_ip", "source IP"),
            ("error_message", "message"),
        ],
    ));
    out.push_str("</section>");
}

fn policy_id(i: usize) -> String {
    format!("policy-{i}")
}

fn unused(out: &mut String, r: &Value) {
    let u = &r["unused"];
    section_open(
        out,
        "unused",
        "Unused permissions",
        "Per user and role of the IAM snapshot: actions granted, used in the window, unused (right-sizing candidates), \
         and not logged (CloudTrail could not show their use), as <code>trailscope unused</code> reports them; largest \
         unused count first. Each principal's least-privilege policy lists the actions it used.",
    );
    if u.is_null() {
        out.push_str(&svg::empty("Granted and used actions", "not run: give the IAM snapshot with --iam AUTHZ.json"));
        out.push_str("</section>");
        return;
    }
    let rows_v = arr(u, "principals");
    let mut rows = Vec::new();
    let mut ends = Vec::new();
    for p in rows_v.iter().take(20) {
        let granted = n(p, "granted").max(1.0);
        let pct = |k: &str| 100.0 * n(p, k) / granted;
        rows.push((
            format!("{} ({} granted)", s(p, "name"), num_text(p, "granted")),
            vec![pct("used"), pct("unused"), pct("not_logged")],
        ));
        ends.push(match p["unused_share"].as_f64() {
            Some(x) => format!("{:.0}% unused", x * 100.0),
            None => "–".into(),
        });
    }
    out.push_str(&svg::hbars_labelled(
        "Share of granted actions (%), largest unused count first",
        &rows,
        &["used", "unused", "not logged"],
        Some(&ends),
    ));
    let index: Vec<String> = arr(u, "policies").iter().map(|p| s(p, "principal").to_string()).collect();
    out.push_str(&table_with(
        rows_v,
        &[
            ("principal", "principal"),
            ("events", "events"),
            ("last_activity", "last activity"),
            ("granted", "granted"),
            ("used", "used"),
            ("unused", "unused"),
            ("not_logged", "not logged"),
            ("attempted", "attempted"),
            ("unused_share", "unused share"),
            ("policy", "least privilege"),
            ("warnings", "warnings"),
        ],
        &|row, key| match key {
            "policy" => index
                .iter()
                .position(|a| a == s(row, "principal"))
                .map(|i| format!("<a href=\"#{}\">policy</a>", policy_id(i))),
            _ => None,
        },
    ));
    out.push_str("<h3>Least-privilege policies</h3><p class=\"note\">One Allow statement per service with the actions each principal used in the window; paste after review.</p>");
    for (i, p) in arr(u, "policies").iter().enumerate() {
        let text = serde_json::to_string_pretty(&p["policy"]).unwrap_or_default();
        let _ = write!(
            out,
            "<details id=\"{id}\"><summary>{}</summary><button type=\"button\" data-copy=\"{id}-text\">Copy</button><pre class=\"policy\" id=\"{id}-text\">{}</pre></details>",
            esc(s(p, "principal")),
            esc(&text),
            id = policy_id(i)
        );
    }
    out.push_str("</section>");
}

fn credentials(out: &mut String, r: &Value) {
    let c = &r["credentials"];
    section_open(
        out,
        "credentials",
        "Credentials",
        "From the IAM credential report: access keys not rotated for 90 days, never used or unused (<code>trailscope \
         unused --credential-report</code>), users with two active keys, passwords older than 90 days, users without MFA.",
    );
    if c.is_null() {
        out.push_str(&svg::empty(
            "Credential findings",
            "not run: give the IAM credential report with --credential-report FILE",
        ));
        out.push_str("</section>");
        return;
    }
    let sm = &c["summary"];
    let items = [
        ("access keys not rotated for 90 days", "access_keys_not_rotated_90_days"),
        ("access keys never used", "access_keys_never_used"),
        ("access keys unused", "access_keys_unused"),
        ("users with two active keys", "users_with_two_keys"),
        ("passwords older than 90 days", "passwords_older_than_90_days"),
        ("users without MFA", "users_without_mfa"),
    ];
    out.push_str("<div class=\"kpis\">");
    for (label, key) in items {
        kpi(out, label, &num_text(sm, key), bad_if(sm, key));
    }
    out.push_str("</div>");
    let rows: Vec<(String, Vec<f64>)> = items.iter().map(|(l, k)| (l.to_string(), vec![n(sm, k)])).collect();
    out.push_str(&svg::hbars(&format!("Credential findings (as of {})", s(r, "as_of")), &rows, &["count"]));
    out.push_str("<h3>Access keys</h3>");
    out.push_str(&table(
        arr(c, "access_keys"),
        &[
            ("user", "user"),
            ("key", "key"),
            ("last_rotated", "last rotated"),
            ("last_used", "last used"),
            ("finding", "finding"),
        ],
    ));
    out.push_str("<h3>Users</h3>");
    out.push_str(&table(
        arr(c, "users"),
        &[
            ("user", "user"),
            ("password_enabled", "password"),
            ("password_age_days", "password age (days)"),
            ("mfa_active", "MFA"),
            ("active_keys", "active keys"),
            ("findings", "findings"),
        ],
    ));
    out.push_str("</section>");
}

fn sessions(out: &mut String, r: &Value) {
    let ss = &r["sessions"];
    section_open(
        out,
        "sessions",
        "Sessions",
        "SSM Session Manager sessions (StartSession, ResumeSession, TerminateSession: check TS-SSM-SESSION) per user \
         and target instance.",
    );
    let rows: Vec<(String, Vec<f64>)> = arr(ss, "by_target")
        .iter()
        .take(20)
        .map(|a| {
            (
                format!("{} → {}", short_name(s(a, "principal")), s(a, "target")),
                vec![n(a, "starts"), n(a, "resumes"), n(a, "terminates")],
            )
        })
        .collect();
    out.push_str(&svg::hbars("Session events per user and target", &rows, &["started", "resumed", "terminated"]));
    out.push_str(&table(
        arr(ss, "by_target"),
        &[
            ("principal", "principal"),
            ("target", "target"),
            ("starts", "started"),
            ("resumes", "resumed"),
            ("terminates", "terminated"),
            ("first_seen", "first"),
            ("last_seen", "last"),
        ],
    ));
    out.push_str("<h3>Sessions</h3>");
    out.push_str(&table(
        arr(ss, "sessions"),
        &[
            ("session_id", "session"),
            ("principal", "principal"),
            ("target", "target"),
            ("source_ip", "source IP"),
            ("started", "started"),
            ("terminated", "terminated"),
            ("resumed", "resumes"),
        ],
    ));
    out.push_str("</section>");
}

fn conditions(out: &mut String, r: &Value) {
    let c = &r["conditions"];
    section_open(
        out,
        "conditions",
        "Policy conditions",
        "Calls made from outside the allowed networks (check TS-OUTSIDE-NETWORK) or outside the allowed hours (check \
         TS-OUTSIDE-HOURS), per principal; calls made by AWS services on a principal's behalf are left out.",
    );
    let list = |k: &str| arr(c, k).iter().map(cell_text).collect::<Vec<_>>().join(", ");
    let _ = write!(
        out,
        "<p class=\"note\">Allowed networks: {}. Allowed hours: {}.</p>",
        if c["network_checked"] == true { esc(&list("allowed_cidrs")) } else { "not given (--allowed-cidr)".into() },
        if c["hours_checked"] == true { esc(&list("allowed_hours")) } else { "not given (--allowed-hours)".into() }
    );
    if c["network_checked"] != true && c["hours_checked"] != true {
        out.push_str(&svg::empty(
            "Calls outside the allowed conditions",
            "not run: give --allowed-cidr and/or --allowed-hours",
        ));
        out.push_str("</section>");
        return;
    }
    let rows: Vec<(String, Vec<f64>)> = arr(c, "principals")
        .iter()
        .take(20)
        .map(|a| (short_name(s(a, "principal")), vec![n(a, "outside_network"), n(a, "outside_hours")]))
        .collect();
    out.push_str(&svg::hbars(
        "Calls outside the allowed conditions per principal",
        &rows,
        &["from elsewhere", "at other times"],
    ));
    out.push_str(&table(
        arr(c, "principals"),
        &[
            ("principal", "principal"),
            ("outside_network", "from elsewhere"),
            ("outside_ips", "IPs"),
            ("sample_ips", "sample IPs"),
            ("outside_hours", "at other times"),
            ("first_seen", "first"),
            ("last_seen", "last"),
        ],
    ));
    out.push_str("</section>");
}

/// The whole page.
pub fn render(r: &Value) -> String {
    let script_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
    let mut out = String::with_capacity(1 << 20);
    let title = s(r, "title");
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; base-uri 'none'; form-action 'none'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{CSS}</style></head><body>\
         <header><h1>{t}</h1>",
        t = esc(title)
    );
    let sm = &r["scope"]["summary"];
    let _ = write!(
        out,
        "<p class=\"meta\">Window: {} to {} · {} events · {} accounts · {} regions</p>\
         <p class=\"meta\">Inputs: {} · Filters: {}</p><p class=\"meta\">Generated {} by trailscope {}; credential ages as of {}.</p></header>",
        esc(s(sm, "first_event_time")),
        esc(s(sm, "last_event_time")),
        num_text(sm, "events"),
        num_text(sm, "accounts"),
        num_text(sm, "regions"),
        esc(&arr(r, "inputs").iter().map(cell_text).collect::<Vec<_>>().join(", ")),
        esc(&r["filters"].to_string()),
        esc(s(r, "generated_at")),
        env!("CARGO_PKG_VERSION"),
        esc(s(r, "as_of")),
    );
    out.push_str("<nav><ol>");
    for id in super::SECTIONS {
        let _ = write!(out, "<li><a href=\"#{id}\">{}</a></li>", section_title(id));
    }
    out.push_str("</ol></nav>");
    actions(&mut out, r);
    scope(&mut out, r);
    root(&mut out, r);
    principals(&mut out, r);
    mfa(&mut out, r);
    failures(&mut out, r);
    unused(&mut out, r);
    credentials(&mut out, r);
    sessions(&mut out, r);
    conditions(&mut out, r);
    let _ = write!(
        out,
        "<footer>Every number here is also in <code>trailscope report … --format json</code> and comes from the same \
         functions as the commands named in each section. Offline file: it loads nothing.</footer><script>{SCRIPT}</script></body></html>"
    );
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("arn:aws:iam::123:user/bob"), "bob (user 123)");
        assert_eq!(short_name("ec2.amazonaws.com"), "ec2.amazonaws.com");
    }
}
