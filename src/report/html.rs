//! The report as one self-contained HTML file: inline CSS, one small inline script (copy buttons),
//! inline SVG charts, no URL to fetch. A Content-Security-Policy forbids every fetch but the inline
//! style and the script (by its hash), so opening the file never reaches the network. Rendered from
//! the report's document only ([`Report`], the JSON's fields); every text from the logs is escaped.

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::actions::{ActionItem, Severity};
use super::document::*;
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

/// A table cell's value: it decides the cell's class and, unless its column renders the cell itself,
/// its text (as the JSON has it: numbers as written there, booleans as yes/no, null empty).
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Num(String),
    Bool(bool),
}

impl Cell<'_> {
    fn is_number(&self) -> bool {
        matches!(self, Cell::Num(_))
    }

    fn text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.to_string(),
            Cell::Num(n) => n.clone(),
            Cell::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        }
    }
}

/// A field of the report as a table cell.
trait AsCell {
    fn cell(&self) -> Cell<'_>;
}

impl AsCell for String {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self)
    }
}

impl AsCell for &str {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self)
    }
}

impl AsCell for u64 {
    fn cell(&self) -> Cell<'_> {
        Cell::Num(self.to_string())
    }
}

impl AsCell for i64 {
    fn cell(&self) -> Cell<'_> {
        Cell::Num(self.to_string())
    }
}

impl AsCell for f64 {
    /// As JSON writes it (`0.5`, `1.0`); JSON has no NaN: null.
    fn cell(&self) -> Cell<'_> {
        serde_json::Number::from_f64(*self).map_or(Cell::Null, |n| Cell::Num(n.to_string()))
    }
}

impl AsCell for bool {
    fn cell(&self) -> Cell<'_> {
        Cell::Bool(*self)
    }
}

impl<T: AsCell> AsCell for Option<T> {
    fn cell(&self) -> Cell<'_> {
        self.as_ref().map_or(Cell::Null, AsCell::cell)
    }
}

impl AsCell for Severity {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self.name())
    }
}

impl AsCell for crate::verify::Kind {
    fn cell(&self) -> Cell<'_> {
        Cell::Text(self.as_str())
    }
}

/// A column's own HTML for a row (`None`: the cell's text).
type CellHtml<'a, R> = &'a dyn Fn(&R) -> Option<String>;

/// A column of a table of `R`s: its key (the JSON key of the field it shows: the cell's class
/// follows from it), its header, its cell, and optionally its own HTML for a row (`None`: the cell's
/// text).
struct Col<'a, R> {
    key: &'static str,
    head: &'static str,
    get: fn(&R) -> Cell<'_>,
    html: Option<CellHtml<'a, R>>,
}

/// `col!(field, "header")`, or `col!(field, "header", &|row| ...)` with the cell's own HTML: the
/// column showing the field of that name.
macro_rules! col {
    ($field:ident, $head:expr) => {
        Col { key: stringify!($field), head: $head, get: |r| r.$field.cell(), html: None }
    };
    ($field:ident, $head:expr, $html:expr) => {
        Col { key: stringify!($field), head: $head, get: |r| r.$field.cell(), html: Some($html) }
    };
}

/// The text of an optional field ("" when absent).
fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
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

/// A table of `rows` with the given columns; past `SHOWN` rows, the rest folds.
fn table<R>(rows: &[R], cols: &[Col<'_, R>]) -> String {
    if rows.is_empty() {
        return "<p class=\"note\">No rows.</p>".into();
    }
    let numeric = |c: &Col<'_, R>| rows.iter().any(|r| (c.get)(r).is_number());
    let head = |out: &mut String| {
        out.push_str("<table><thead><tr>");
        for c in cols {
            let _ = write!(out, "<th{}>{}</th>", if numeric(c) { " class=\"n\"" } else { "" }, esc(c.head));
        }
        out.push_str("</tr></thead><tbody>");
    };
    let body = |out: &mut String, part: &[R]| {
        for r in part {
            out.push_str("<tr>");
            for c in cols {
                let v = (c.get)(r);
                let key = c.key;
                let class = if v.is_number() {
                    " class=\"n\""
                } else if matches!(key, "principal" | "member" | "arn") {
                    " class=\"p\""
                } else if is_wide(key) {
                    " class=\"w\""
                } else if key.ends_with("_time") || key.ends_with("_seen") || key.starts_with("last_") {
                    " class=\"t\""
                } else {
                    ""
                };
                let content = c.html.and_then(|f| f(r)).unwrap_or_else(|| long_text(&v.text()));
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

fn bad_if(n: u64) -> &'static str {
    if n > 0 {
        "bad"
    } else {
        "good"
    }
}

fn timechart(title: &str, ot: &OverTime) -> String {
    let rows: Vec<(String, Vec<f64>)> =
        ot.rows.iter().map(|r| (r.bucket.clone(), r.counts.iter().map(|(_, n)| *n as f64).collect())).collect();
    let label: Vec<String> = ot.series.iter().map(|x| x.replace('_', " ")).collect();
    let label: Vec<&str> = label.iter().map(String::as_str).collect();
    svg::timebars(&format!("{title} (per {})", ot.bucket.name()), &rows, &label)
}

/// Under a list cut at `--max-rows`: how many of how many rows it shows, and which command lists them
/// all. Nothing when every row is shown.
fn shown_of(out: &mut String, shown: usize, total: u64, command: &str) {
    if (shown as u64) < total {
        let _ = write!(
            out,
            "<p class=\"note\">The first {} of {}; <code>{}</code> lists them all (or raise <code>--max-rows</code>).</p>",
            shown,
            total,
            esc(command)
        );
    }
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

fn severity_html(severity: &str) -> String {
    format!("<span class=\"sev-{0}\">{0}</span>", esc(severity))
}

fn actions(out: &mut String, r: &Report) {
    let a = &r.actions;
    section_open(
        out,
        "actions",
        "Action items",
        "What this review must act on, most severe first: root sign-ins without MFA, trail tampering, never-used \
         credentials, grants that can escalate privileges and were never used, and the other findings below. Each \
         item links to the section holding its evidence; its count is that section's number.",
    );
    let counts = &a.counts;
    out.push_str("<div class=\"kpis\">");
    for sev in Severity::ALL {
        let n = counts.get(sev);
        let class = if matches!(sev, Severity::Critical | Severity::High) { bad_if(n) } else { "" };
        kpi(out, sev.name(), &n.to_string(), class);
    }
    out.push_str("</div>");
    let rows: Vec<(String, Vec<f64>)> =
        Severity::ALL.iter().map(|sev| (sev.name().to_string(), vec![counts.get(*sev) as f64])).collect();
    out.push_str(&svg::hbars("Action items by severity", &rows, &["items"]));
    out.push_str(&table(
        &a.items,
        &[
            col!(severity, "severity", &|i: &ActionItem| Some(severity_html(i.severity.name()))),
            col!(what, "what"),
            col!(who, "who"),
            col!(count, "count", &|i: &ActionItem| Some(format!("{} {}", i.count, esc(i.unit)))),
            col!(anchor, "evidence", &|i: &ActionItem| {
                Some(format!("<a href=\"#{}\">{}</a>", esc(i.anchor), esc(section_title(i.section))))
            }),
        ],
    ));
    out.push_str("</section>");
}

fn scope(out: &mut String, r: &Report) {
    let sc = &r.scope;
    let sm = &sc.summary;
    section_open(
        out,
        "scope",
        "Scope",
        "What was read: the evidence of coverage. Files and events are counted as <code>trailscope scan</code> counts \
         them; the same eventID delivered twice counts once.",
    );
    out.push_str("<div class=\"kpis\">");
    for (label, n) in
        [("events", sm.events), ("accounts", sm.accounts), ("regions", sm.regions), ("files read", sm.files)]
    {
        kpi(out, label, &n.to_string(), "");
    }
    kpi(out, "files skipped", &sm.files_skipped.to_string(), "");
    kpi(out, "files failed", &sm.files_failed.to_string(), bad_if(sm.files_failed));
    kpi(out, "records rejected", &sm.records_rejected.to_string(), bad_if(sm.records_rejected));
    kpi(out, "duplicates dropped", &sm.duplicates.to_string(), "");
    kpi(out, "first event", text(&sm.first_event_time), "");
    kpi(out, "last event", text(&sm.last_event_time), "");
    for i in &sc.integrity {
        kpi(out, &format!("integrity of {}", i.input), &i.report.verdict, bad_if(i.report.problems));
    }
    out.push_str("</div>");
    out.push_str(&timechart("Events over time", &sc.over_time));
    let accounts: Vec<(String, Vec<f64>)> =
        sc.by_account.iter().take(20).map(|a| (a.key.clone(), vec![a.events as f64])).collect();
    out.push_str(&svg::hbars("Events by account (first 20 by account id)", &accounts, &["events"]));
    out.push_str("<div class=\"cols\"><div><h3>Accounts</h3>");
    out.push_str(&table(&sc.by_account, &[col!(key, "account"), col!(events, "events")]));
    out.push_str("</div><div><h3>Regions</h3>");
    out.push_str(&table(&sc.by_region, &[col!(key, "region"), col!(events, "events")]));
    out.push_str("</div></div>");
    out.push_str("<h3 id=\"integrity\">Log file integrity</h3>");
    if sc.integrity.is_empty() {
        out.push_str(
            "<p class=\"note\">No input holds CloudTrail-Digest files: integrity was not checked (pull with digests and \
             run <code>trailscope verify</code>).</p>",
        );
    } else {
        let of_report = |key, head, get: fn(&Integrity) -> Cell<'_>| Col { key, head, get, html: None };
        out.push_str(&table(
            &sc.integrity,
            &[
                col!(input, "input"),
                of_report("verdict", "verdict", |i| i.report.verdict.cell()),
                of_report("digests", "digests", |i| i.report.digests.cell()),
                of_report("log_files", "log files", |i| i.report.log_files.cell()),
                of_report("log_files_verified", "verified", |i| i.report.log_files_verified.cell()),
                of_report("problems", "problems", |i| i.report.problems.cell()),
            ],
        ));
        let findings: Vec<&crate::verify::Finding> = sc.integrity.iter().flat_map(|i| &i.report.findings).collect();
        if !findings.is_empty() {
            out.push_str(&table(&findings, &[col!(kind, "kind"), col!(path, "path"), col!(detail, "detail")]));
        }
    }
    for (rows, title) in [(&sc.failed, "Failed files"), (&sc.skipped, "Skipped files")] {
        if !rows.is_empty() {
            let _ = write!(out, "<h3>{title}</h3>");
            out.push_str(&table(rows, &[col!(path, "path"), col!(reason, "reason")]));
        }
    }
    if !sc.rejected.is_empty() {
        out.push_str("<h3>Rejected records</h3>");
        out.push_str(&table(&sc.rejected, &[col!(path, "path"), col!(records, "records"), col!(reason, "reason")]));
    }
    out.push_str("</section>");
}

fn root(out: &mut String, r: &Report) {
    let ro = &r.root;
    let sm = ro.summary.clone().unwrap_or_default();
    section_open(
        out,
        "root",
        "Root account",
        "Root-account use under CIS semantics (type Root, no invokedBy, not a service event), as <code>trailscope \
         root</code> reports it; and the findings of every built-in check (<code>trailscope detect</code>).",
    );
    // A missing summary shows blanks, as in the JSON (null).
    let num = |n: u64| if ro.summary.is_some() { n.to_string() } else { String::new() };
    let with_mfa = sm.console_login_success as f64 - sm.console_login_success_without_mfa as f64;
    out.push_str("<div class=\"kpis\">");
    kpi(out, "root events", &num(sm.events), bad_if(sm.events));
    kpi(out, "console sign-ins", &num(sm.console_logins), "");
    kpi(out, "sign-ins with MFA", &format!("{with_mfa}"), "");
    kpi(
        out,
        "sign-ins without MFA",
        &num(sm.console_login_success_without_mfa),
        bad_if(sm.console_login_success_without_mfa),
    );
    kpi(out, "failed sign-ins", &num(sm.console_login_failure), bad_if(sm.console_login_failure));
    kpi(out, "access-key calls", &num(sm.access_key_events), bad_if(sm.access_key_events));
    kpi(out, "long-term key (AKIA)", &num(sm.akia_key_events), bad_if(sm.akia_key_events));
    kpi(out, "temporary key (ASIA)", &num(sm.asia_key_events), "");
    kpi(out, "source IPs", &num(sm.source_ips), "");
    out.push_str("</div>");
    out.push_str(&timechart("Root events over time", &ro.over_time));
    let signins = vec![(
        "root console sign-ins".to_string(),
        vec![with_mfa, sm.console_login_success_without_mfa as f64, sm.console_login_failure as f64],
    )];
    out.push_str(&svg::hbars("Root sign-ins", &signins, &["with MFA", "without MFA", "failed"]));
    let checks: Vec<(String, Vec<f64>)> =
        ro.checks.iter().map(|c| (format!("{} {}", c.check_id, c.title), vec![c.findings as f64])).collect();
    out.push_str(&svg::hbars("Findings per check (trailscope detect)", &checks, &["findings"]));
    out.push_str("<h3>Checks</h3>");
    out.push_str(&table(
        &ro.checks,
        &[
            col!(check_id, "check"),
            col!(title, "title"),
            col!(severity, "severity", &|c: &CheckCount| Some(severity_html(c.severity))),
            col!(findings, "findings", &|c: &CheckCount| {
                c.skipped.then(|| "<span class=\"skip\">skipped (needs its flag)</span>".to_string())
            }),
        ],
    ));
    out.push_str("<h3 id=\"root-findings\">Findings to act on</h3>");
    out.push_str(
        "<p class=\"note\">The findings of the checks listed in the action items (trail tampering, root access keys, \
         credentials created for others, denied then succeeded, KMS keys disabled), as <code>trailscope detect</code> \
         reports them.</p>",
    );
    out.push_str(&table(
        &ro.findings,
        &[
            col!(event_time, "time"),
            col!(check_id, "check"),
            col!(severity, "severity", &|f: &DetectFinding| Some(severity_html(&f.severity))),
            col!(principal, "principal"),
            col!(event_name, "event"),
            col!(source_ip, "source IP"),
            col!(outcome, "outcome"),
        ],
    ));
    shown_of(out, ro.findings.len(), ro.findings_total, "trailscope detect --check ...");
    out.push_str("<h3 id=\"root-events\">Root events</h3>");
    out.push_str(&table(
        &ro.events,
        &[
            col!(event_time, "time"),
            col!(recipient_account_id, "account"),
            col!(event_name, "event"),
            col!(source_ip, "source IP"),
            col!(error_code, "error"),
            col!(access_key_id, "access key"),
            col!(console_login, "sign-in"),
            col!(mfa_used, "MFA"),
        ],
    ));
    shown_of(out, ro.events.len(), ro.events_total, "trailscope root");
    out.push_str("</section>");
}

fn principals(out: &mut String, r: &Report) {
    let p = &r.principals;
    section_open(
        out,
        "principals",
        "Principals",
        "Who did what (<code>trailscope activity</code>); principals of the IAM snapshot with no activity in the window; \
         and per IAM group, its members and what they did (<code>trailscope activity --by group --iam</code>).",
    );
    let rows: Vec<(String, Vec<f64>)> = p
        .activity
        .iter()
        .take(20)
        .map(|a| (short_name(text(&a.principal)), vec![a.events as f64 - a.errors as f64, a.errors as f64]))
        .collect();
    out.push_str(&svg::hbars("Events per principal (the 20 busiest)", &rows, &["succeeded", "failed"]));
    out.push_str("<h3>Activity per principal</h3>");
    out.push_str(&table(
        &p.activity,
        &[
            col!(principal, "principal"),
            col!(principal_type, "type"),
            col!(events, "events"),
            col!(errors, "errors"),
            col!(last_seen, "last seen"),
            col!(services, "services"),
            col!(actions, "actions"),
            col!(source_ips, "IPs"),
            col!(top_services, "top services"),
        ],
    ));
    out.push_str("<h3 id=\"dormant\">Dormant principals</h3>");
    match &p.dormant {
        None => out.push_str("<p class=\"note\">Give the IAM snapshot (<code>--iam AUTHZ.json</code>) to list dormant users and roles and the groups.</p>"),
        Some(dormant) => {
            out.push_str(
                "<p class=\"note\">In the IAM snapshot, with no activity in the window: candidates for removal.</p>",
            );
            out.push_str(&table(
                dormant,
                &[
                    col!(principal, "principal"),
                    col!(principal_type, "type"),
                    col!(granted, "granted actions"),
                    col!(warnings, "warnings"),
                ],
            ));
            let groups = p.groups.as_deref().unwrap_or_default();
            let bars: Vec<(String, Vec<f64>)> = groups
                .iter()
                .map(|g| {
                    (
                        format!("{} (members: {})", text(&g.group), g.members),
                        vec![g.events as f64 - g.errors as f64, g.errors as f64],
                    )
                })
                .collect();
            out.push_str(&svg::hbars("Events per IAM group (by its members)", &bars, &["succeeded", "failed"]));
            out.push_str("<h3>IAM groups</h3>");
            out.push_str(&table(
                groups,
                &[
                    col!(group, "group"),
                    col!(members, "members"),
                    col!(active_members, "active"),
                    col!(events, "events"),
                    col!(errors, "errors"),
                    col!(last_seen, "last seen"),
                    col!(top_actions, "top actions"),
                ],
            ));
            out.push_str("<h3>Group members</h3>");
            out.push_str(&table(
                p.group_members.as_deref().unwrap_or_default(),
                &[
                    col!(group, "group"),
                    col!(member, "member"),
                    col!(events, "events"),
                    col!(errors, "errors"),
                    col!(last_seen, "last seen"),
                    col!(top_services, "top services"),
                ],
            ));
            out.push_str("<h3>What each group did</h3>");
            out.push_str(&table(
                p.group_by_action.as_deref().unwrap_or_default(),
                &[
                    col!(group, "group"),
                    col!(service, "service"),
                    col!(event_name, "action"),
                    col!(events, "events"),
                    col!(errors, "errors"),
                    col!(members, "members"),
                    col!(last_seen, "last seen"),
                ],
            ));
        }
    }
    out.push_str("</section>");
}

fn mfa(out: &mut String, r: &Report) {
    let m = &r.mfa;
    section_open(
        out,
        "mfa",
        "MFA posture",
        "IAM users who signed in to the console without MFA (check CIS-4.2) or made calls in a session that was not \
         MFA-authenticated (check TS-NO-MFA-SESSION): <code>trailscope detect --check CIS-4.2 --check TS-NO-MFA-SESSION</code>.",
    );
    let rows: Vec<(String, Vec<f64>)> = m
        .principals
        .iter()
        .take(20)
        .map(|a| {
            (short_name(text(&a.principal)), vec![a.console_sign_ins_without_mfa as f64, a.calls_without_mfa as f64])
        })
        .collect();
    out.push_str(&svg::hbars("Activity without MFA per IAM user", &rows, &["console sign-ins", "calls in sessions"]));
    out.push_str(&table(
        &m.principals,
        &[
            col!(principal, "principal"),
            col!(console_sign_ins_without_mfa, "console sign-ins without MFA"),
            col!(calls_without_mfa, "calls without MFA"),
            col!(source_ips, "source IPs"),
            col!(first_seen, "first"),
            col!(last_seen, "last"),
        ],
    ));
    out.push_str("<h3>Console sign-ins without MFA</h3>");
    out.push_str(&table(
        &m.console_sign_ins,
        &[col!(event_time, "time"), col!(principal, "principal"), col!(source_ip, "source IP")],
    ));
    shown_of(out, m.console_sign_ins.len(), m.console_sign_ins_total, "trailscope detect --check CIS-4.2");
    out.push_str("</section>");
}

/// The action as service:EventName (the JSON keeps event_source and event_name apart).
fn action(event_source: &Option<String>, event_name: &Option<String>) -> Option<String> {
    Some(esc(&format!("{}:{}", text(event_source).trim_end_matches(".amazonaws.com"), text(event_name))))
}

fn failures(out: &mut String, r: &Report) {
    let f = &r.failures;
    section_open(
        out,
        "failures",
        "Failed requests",
        "Requests that failed (<code>trailscope failures</code>), the authorization denials among them \
         (<code>--denied</code>), and failed console sign-ins.",
    );
    out.push_str(&timechart("Failed requests over time", &f.over_time));
    let rows: Vec<(String, Vec<f64>)> = f
        .failures
        .iter()
        .take(15)
        .map(|a| {
            let action =
                text(&a.event_source).trim_end_matches(".amazonaws.com").to_string() + ":" + text(&a.event_name);
            let who = text(&a.principal).rsplit(['/', ':']).next().unwrap_or("");
            (format!("{who} · {action} · {}", text(&a.error_code)), vec![a.count as f64])
        })
        .collect();
    out.push_str(&svg::hbars("Top (principal, action, error) pairs", &rows, &["count"]));
    out.push_str("<h3>Failures</h3>");
    out.push_str(&table(
        &f.failures,
        &[
            col!(principal, "principal"),
            col!(event_name, "action", &|g: &FailureGroup| action(&g.event_source, &g.event_name)),
            col!(error_code, "error"),
            col!(count, "count"),
            col!(last_seen, "last seen"),
            col!(sample_error_message, "sample message"),
        ],
    ));
    out.push_str("<h3>Authorization denials</h3>");
    out.push_str(&table(
        &f.denied,
        &[
            col!(principal, "principal"),
            col!(event_name, "action", &|g: &DeniedGroup| action(&g.event_source, &g.event_name)),
            col!(error_code, "error"),
            col!(denial, "denial"),
            col!(policy_type, "policy"),
            col!(count, "count"),
            col!(last_seen, "last seen"),
        ],
    ));
    out.push_str("<h3>Console sign-in failures</h3>");
    out.push_str(&table(
        &f.console_sign_in_failures,
        &[
            col!(event_time, "time"),
            col!(user_name, "user"),
            col!(principal, "principal"),
            col!(source_ip, "source IP"),
            col!(error_message, "message"),
        ],
    ));
    shown_of(out, f.console_sign_in_failures.len(), f.console_sign_in_failures_total, "trailscope failures");
    out.push_str("</section>");
}

fn policy_id(i: usize) -> String {
    format!("policy-{i}")
}

fn unused(out: &mut String, r: &Report) {
    section_open(
        out,
        "unused",
        "Unused permissions",
        "Per user and role of the IAM snapshot: actions granted, used in the window, unused (right-sizing candidates), \
         and not logged (CloudTrail could not show their use), as <code>trailscope unused</code> reports them; largest \
         unused count first. Each principal's least-privilege policy lists the actions it used.",
    );
    let Some(u) = &r.unused else {
        out.push_str(&svg::empty("Granted and used actions", "not run: give the IAM snapshot with --iam AUTHZ.json"));
        out.push_str("</section>");
        return;
    };
    let mut rows = Vec::new();
    let mut ends = Vec::new();
    for p in u.principals.iter().take(20) {
        let granted = (p.granted as f64).max(1.0);
        let pct = |n: u64| 100.0 * n as f64 / granted;
        rows.push((format!("{} ({} granted)", p.name, p.granted), vec![pct(p.used), pct(p.unused), pct(p.not_logged)]));
        ends.push(match p.unused_share {
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
    let index: Vec<&str> = u.policies.iter().map(|p| p.principal.as_str()).collect();
    let policy_link = |row: &UnusedRow| {
        index.iter().position(|a| *a == row.principal).map(|i| format!("<a href=\"#{}\">policy</a>", policy_id(i)))
    };
    out.push_str(&table(
        &u.principals,
        &[
            col!(principal, "principal"),
            col!(events, "events"),
            col!(last_activity, "last activity"),
            col!(granted, "granted"),
            col!(used, "used"),
            col!(unused, "unused"),
            col!(not_logged, "not logged"),
            col!(attempted, "attempted"),
            col!(unused_share, "unused share"),
            // Not a field: the link to the principal's policy below.
            Col { key: "policy", head: "least privilege", get: |_| Cell::Null, html: Some(&policy_link) },
            col!(warnings, "warnings"),
        ],
    ));
    out.push_str("<h3>Least-privilege policies</h3><p class=\"note\">One Allow statement per service with the actions each principal used in the window; paste after review.</p>");
    for (i, p) in u.policies.iter().enumerate() {
        let text = serde_json::to_string_pretty(&p.policy).unwrap_or_default();
        let _ = write!(
            out,
            "<details id=\"{id}\"><summary>{}</summary><button type=\"button\" data-copy=\"{id}-text\">Copy</button><pre class=\"policy\" id=\"{id}-text\">{}</pre></details>",
            esc(&p.principal),
            esc(&text),
            id = policy_id(i)
        );
    }
    out.push_str("</section>");
}

fn credentials(out: &mut String, r: &Report) {
    section_open(
        out,
        "credentials",
        "Credentials",
        "From the IAM credential report: access keys not rotated for 90 days, never used or unused (<code>trailscope \
         unused --credential-report</code>), users with two active keys, passwords older than 90 days, users without MFA.",
    );
    let Some(c) = &r.credentials else {
        out.push_str(&svg::empty(
            "Credential findings",
            "not run: give the IAM credential report with --credential-report FILE",
        ));
        out.push_str("</section>");
        return;
    };
    let sm = &c.summary;
    let items = [
        ("access keys not rotated for 90 days", sm.access_keys_not_rotated_90_days),
        ("access keys never used", sm.access_keys_never_used),
        ("access keys unused", sm.access_keys_unused),
        ("users with two active keys", sm.users_with_two_keys),
        ("passwords older than 90 days", sm.passwords_older_than_90_days),
        ("users without MFA", sm.users_without_mfa),
    ];
    out.push_str("<div class=\"kpis\">");
    for (label, n) in items {
        kpi(out, label, &n.to_string(), bad_if(n));
    }
    out.push_str("</div>");
    let rows: Vec<(String, Vec<f64>)> = items.iter().map(|(l, n)| (l.to_string(), vec![*n as f64])).collect();
    out.push_str(&svg::hbars(&format!("Credential findings (as of {})", r.as_of), &rows, &["count"]));
    out.push_str("<h3>Access keys</h3>");
    out.push_str(&table(
        &c.access_keys,
        &[
            col!(user, "user"),
            col!(key, "key"),
            col!(last_rotated, "last rotated"),
            col!(last_used, "last used"),
            col!(finding, "finding"),
        ],
    ));
    out.push_str("<h3>Users</h3>");
    out.push_str(&table(
        &c.users,
        &[
            col!(user, "user"),
            col!(password_enabled, "password"),
            col!(password_age_days, "password age (days)"),
            col!(mfa_active, "MFA"),
            col!(active_keys, "active keys"),
            col!(findings, "findings"),
        ],
    ));
    out.push_str("</section>");
}

fn sessions(out: &mut String, r: &Report) {
    let ss = &r.sessions;
    section_open(
        out,
        "sessions",
        "Sessions",
        "SSM Session Manager sessions (StartSession, ResumeSession, TerminateSession: check TS-SSM-SESSION) per user \
         and target instance.",
    );
    let rows: Vec<(String, Vec<f64>)> = ss
        .by_target
        .iter()
        .take(20)
        .map(|a| {
            (
                format!("{} → {}", short_name(&a.principal), a.target),
                vec![a.starts as f64, a.resumes as f64, a.terminates as f64],
            )
        })
        .collect();
    out.push_str(&svg::hbars("Session events per user and target", &rows, &["started", "resumed", "terminated"]));
    out.push_str(&table(
        &ss.by_target,
        &[
            col!(principal, "principal"),
            col!(target, "target"),
            col!(starts, "started"),
            col!(resumes, "resumed"),
            col!(terminates, "terminated"),
            col!(first_seen, "first"),
            col!(last_seen, "last"),
        ],
    ));
    out.push_str("<h3>Sessions</h3>");
    out.push_str(&table(
        &ss.sessions,
        &[
            col!(session_id, "session"),
            col!(principal, "principal"),
            col!(target, "target"),
            col!(source_ip, "source IP"),
            col!(started, "started"),
            col!(terminated, "terminated"),
            col!(resumed, "resumes"),
        ],
    ));
    shown_of(out, ss.sessions.len(), ss.sessions_total, "trailscope detect --check TS-SSM-SESSION");
    out.push_str("</section>");
}

fn conditions(out: &mut String, r: &Report) {
    let c = &r.conditions;
    section_open(
        out,
        "conditions",
        "Policy conditions",
        "Calls made from outside the allowed networks (check TS-OUTSIDE-NETWORK) or outside the allowed hours (check \
         TS-OUTSIDE-HOURS), per principal; calls made by AWS services on a principal's behalf are left out.",
    );
    let _ = write!(
        out,
        "<p class=\"note\">Allowed networks: {}. Allowed hours: {}.</p>",
        if c.network_checked { esc(&c.allowed_cidrs.join(", ")) } else { "not given (--allowed-cidr)".into() },
        if c.hours_checked { esc(&c.allowed_hours.join(", ")) } else { "not given (--allowed-hours)".into() }
    );
    if !c.network_checked && !c.hours_checked {
        out.push_str(&svg::empty(
            "Calls outside the allowed conditions",
            "not run: give --allowed-cidr and/or --allowed-hours",
        ));
        out.push_str("</section>");
        return;
    }
    let rows: Vec<(String, Vec<f64>)> = c
        .principals
        .iter()
        .take(20)
        .map(|a| (short_name(text(&a.principal)), vec![a.outside_network as f64, a.outside_hours as f64]))
        .collect();
    out.push_str(&svg::hbars(
        "Calls outside the allowed conditions per principal",
        &rows,
        &["from elsewhere", "at other times"],
    ));
    out.push_str(&table(
        &c.principals,
        &[
            col!(principal, "principal"),
            col!(outside_network, "from elsewhere"),
            col!(outside_ips, "IPs"),
            col!(sample_ips, "sample IPs"),
            col!(outside_hours, "at other times"),
            col!(first_seen, "first"),
            col!(last_seen, "last"),
        ],
    ));
    out.push_str("</section>");
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let script_hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; base-uri 'none'; form-action 'none'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{CSS}</style></head><body>\
         <header><h1>{t}</h1>",
        t = esc(&r.title)
    );
    let sm = &r.scope.summary;
    let _ = write!(
        out,
        "<p class=\"meta\">Window: {} to {} · {} events · {} accounts · {} regions</p>\
         <p class=\"meta\">Inputs: {} · Filters: {}</p><p class=\"meta\">Generated {} by trailscope {}; credential ages as of {}.</p></header>",
        esc(text(&sm.first_event_time)),
        esc(text(&sm.last_event_time)),
        sm.events,
        sm.accounts,
        sm.regions,
        esc(&r.inputs.join(", ")),
        esc(&serde_json::to_string(&r.filters).unwrap_or_default()),
        esc(&r.generated_at),
        env!("CARGO_PKG_VERSION"),
        esc(&r.as_of),
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
