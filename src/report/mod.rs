//! `report`: the quarterly access-review pack. One pass over the dataset asks the same questions as
//! the individual commands (`scan`'s accounting, `root`, `activity`, `failures`, `detect`, `unused`,
//! `verify`) through the same library functions, and gathers their answers into one typed document
//! (`document.rs`: [`Report`], serialized for `--format json`); `html.rs` renders that document,
//! with charts drawn by `svg.rs`, as one self-contained HTML file. The HTML shows nothing the JSON
//! does not hold, so its numbers are the commands' numbers.

pub mod actions;
pub mod credentials;
pub mod document;
pub mod html;
mod markup;
pub mod svg;

use crate::query::Run;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use polars::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use document::*;
pub use document::{Bucket, Filters, Report};

use crate::error::{PolarsContext, Result};
use crate::iam::authz::AuthorizationDetails;
use crate::ingest::frame::col_name as c;
use crate::query::dataset::Dataset;
use crate::query::unused;
use crate::query::{self, detect};
use crate::time::format_ms;

/// What the report needs besides the events.
pub struct Options {
    pub title: String,
    /// The command line's INPUTs (directories with digest files get an integrity check).
    pub inputs: Vec<PathBuf>,
    pub params: detect::Params,
    /// `--allowed-cidr` as given (for the record).
    pub allowed_cidrs: Vec<String>,
    /// The IAM snapshot, when `--iam` was given.
    pub authz: Option<AuthorizationDetails>,
    /// The credential report: its path and text, when `--credential-report` was given.
    pub credential_report: Option<(String, String)>,
    pub stale_days: i64,
    pub as_of_ms: i64,
    pub max_file_bytes: u64,
    /// `--memory-limit`: what the detect findings may hold before they spill.
    pub memory_limit: u64,
    /// `--max-rows`: the most rows a list of events or findings shows (its total is always given).
    pub max_rows: usize,
    /// The shared filters as given (for the record).
    pub filters: Filters,
}

/// The section ids, in report order (the HTML's `<section id>`s and the JSON's keys).
pub const SECTIONS: [&str; 10] =
    ["actions", "scope", "root", "principals", "mfa", "failures", "unused", "credentials", "sessions", "conditions"];

/// The rows of a lazy answer as `R`s.
fn rows<R: DeserializeOwned + Serialize>(lf: LazyFrame, what: &str) -> Result<Vec<R>> {
    typed_rows(&lf.run().context(what)?, what)
}

impl Bucket {
    fn for_span(first: i64, last: i64) -> Bucket {
        let hours = (last - first) / 3_600_000;
        if hours <= 72 {
            Bucket::Hour
        } else if hours <= 24 * 400 {
            Bucket::Day
        } else {
            Bucket::Month
        }
    }

    fn strftime(self) -> &'static str {
        match self {
            Bucket::Hour => "%Y-%m-%dT%H:00Z",
            Bucket::Day => "%Y-%m-%d",
            Bucket::Month => "%Y-%m",
        }
    }

    /// Every bucket label from the one holding `first` to the one holding `last`.
    fn labels(self, first: i64, last: i64) -> Vec<String> {
        let (Some(a), Some(b)) =
            (DateTime::<Utc>::from_timestamp_millis(first), DateTime::<Utc>::from_timestamp_millis(last))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match self {
            Bucket::Hour => {
                let mut t = a.date_naive().and_hms_opt(a.hour(), 0, 0);
                while let Some(x) = t {
                    if x > b.naive_utc() || out.len() > 10_000 {
                        break;
                    }
                    out.push(x.format(self.strftime()).to_string());
                    t = x.checked_add_signed(Duration::hours(1));
                }
            }
            Bucket::Day => {
                let mut d = a.date_naive();
                while d <= b.date_naive() && out.len() <= 10_000 {
                    out.push(d.format("%Y-%m-%d").to_string());
                    d = d.succ_opt().unwrap_or(d);
                }
            }
            Bucket::Month => {
                let (mut y, mut m) = (a.year(), a.month());
                while (y, m) <= (b.year(), b.month()) && out.len() <= 10_000 {
                    out.push(format!("{y:04}-{m:02}"));
                    (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                }
            }
        }
        out
    }
}

/// Events per bucket for each named subset, over every bucket of the window (zeros included).
fn over_time(
    ev: &LazyFrame,
    bucket: Bucket,
    span: Option<(i64, i64)>,
    series: &[(&'static str, Expr)],
) -> Result<OverTime> {
    // No events: no buckets, and no series either.
    let Some((first, last)) = span else { return Ok(OverTime { bucket, series: Vec::new(), rows: Vec::new() }) };
    let names: Vec<&'static str> = series.iter().map(|s| s.0).collect();
    let aggs: Vec<Expr> =
        series.iter().map(|(name, cond)| cond.clone().cast(DataType::UInt32).sum().alias(*name)).collect();
    let df = ev
        .clone()
        .group_by([col(c::EVENT_TIME).dt().strftime(bucket.strftime()).alias("bucket")])
        .agg(aggs)
        .run()
        .context("events over time")?;
    let keys = df.column("bucket").context("bucket")?.str().context("bucket")?.clone();
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let mut v = Vec::new();
        for (name, _) in series {
            let col = df.column(name).context(name)?.cast(&DataType::UInt64).context(name)?;
            v.push(col.u64().context(name)?.get(i).unwrap_or(0));
        }
        counts.insert(k.unwrap_or("").to_string(), v);
    }
    let rows = bucket
        .labels(first, last)
        .into_iter()
        .map(|label| {
            let v = counts.get(&label).cloned().unwrap_or_else(|| vec![0; series.len()]);
            BucketCounts { bucket: label, counts: names.iter().copied().zip(v).collect() }
        })
        .collect();
    Ok(OverTime { bucket, series: names, rows })
}

/// Directories among the inputs that hold CloudTrail digest files (integrity can be checked there).
fn digest_roots(inputs: &[PathBuf]) -> Vec<PathBuf> {
    fn has_digests(dir: &Path, depth: usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        entries.flatten().any(|e| {
            let p = e.path();
            p.is_dir() && (e.file_name() == "CloudTrail-Digest" || (depth < 12 && has_digests(&p, depth + 1)))
        })
    }
    inputs.iter().filter(|p| p.is_dir() && has_digests(p, 0)).cloned().collect()
}

/// How many events `cond` selects.
fn count_of(ev: &LazyFrame, cond: Expr, what: &str) -> Result<u64> {
    let df = ev.clone().filter(cond).select([len().cast(DataType::UInt64).alias("n")]).run().context(what)?;
    Ok(df.column("n").context(what)?.u64().context(what)?.get(0).unwrap_or(0))
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let s = df.column(name).context(name)?.cast(&DataType::String).context(name)?;
    Ok(s.str().context(name)?.iter().map(|x| x.map(str::to_string)).collect())
}

/// The recipient accounts of root's events, and of its console sign-ins without MFA (as `root
/// --summary` counts them), each distinct, in order.
fn root_accounts(ev: &LazyFrame) -> Result<RootAccounts> {
    let without_mfa = query::is_console_login()
        .and(col(c::CONSOLE_LOGIN).eq(lit("Success")).fill_null(lit(false)))
        .and(query::mfa_used().not());
    let df = ev
        .clone()
        .filter(query::root::is_root_usage())
        .group_by([col(c::RECIPIENT_ACCOUNT_ID), without_mfa.alias("without_mfa")])
        .agg([len()])
        .sort([c::RECIPIENT_ACCOUNT_ID], Default::default())
        .run()
        .context("root's accounts")?;
    let accounts = strings(&df, c::RECIPIENT_ACCOUNT_ID)?;
    let flags = df.column("without_mfa").context("without_mfa")?.bool().context("without_mfa")?.clone();
    let mut out = RootAccounts::default();
    for (account, flag) in accounts.into_iter().zip(flags.iter()) {
        let Some(account) = account.filter(|a| !a.is_empty()) else { continue };
        if flag == Some(true) {
            out.signed_in_without_mfa.push(account.clone());
        }
        if out.used.last() != Some(&account) {
            out.used.push(account);
        }
    }
    Ok(out)
}

/// Build the report.
pub fn build(data: Dataset, opts: &Options) -> Result<Report> {
    let Dataset { events, stats, duplicates, .. } = data;
    let ev = events;
    let max_rows = IdxSize::try_from(opts.max_rows).unwrap_or(IdxSize::MAX);

    // ---- scope: what was read, as `scan` counts it, and the integrity of digested trees.
    let scope = crate::query::scope::scope(&ev)?;
    let (n_events, first, last) = (scope.events, scope.first_ms, scope.last_ms);
    let span = first.zip(last);
    let bucket = span.map_or(Bucket::Day, |(a, b)| Bucket::for_span(a, b));
    let mut integrity = Vec::new();
    for root in digest_roots(&opts.inputs) {
        let report = crate::verify::verify(&root, None, opts.max_file_bytes)?;
        integrity.push(Integrity { report, input: crate::fs::display_path(&root) });
    }
    let scope = Scope {
        summary: ScopeSummary {
            files: stats.files,
            files_skipped: stats.files_skipped,
            files_failed: stats.files_failed,
            records: stats.records,
            records_rejected: stats.records_rejected,
            records_without_event_id: stats.records_without_event_id,
            events: n_events,
            duplicates,
            first_event_time: first.map(format_ms),
            last_event_time: last.map(format_ms),
            accounts: scope.by_account.len() as u64,
            regions: scope.by_region.len() as u64,
            bytes_read: stats.bytes_read,
            bytes_decoded: stats.bytes_decoded,
        },
        by_account: scope.by_account,
        by_region: scope.by_region,
        over_time: over_time(&ev, bucket, span, &[("events", col(c::EVENT_TIME).is_not_null())])?,
        skipped: stats.skipped,
        failed: stats.failed,
        rejected: stats.rejected,
        integrity,
    };

    crate::query::spill::memtrace("report: scope");
    // ---- detect: every check once; the sections below read their findings from here.
    // Kept on disk past a sixteenth of the memory limit: the sections below read them again.
    let kept = detect::findings_kept(ev.clone(), &[], &opts.params, opts.memory_limit)?;
    let findings = kept.rows.clone();
    let per_check = findings.clone().group_by([col("check_id")]).agg([len().alias("n")]).run().context("findings")?;
    let per_check: BTreeMap<String, u64> = strings(&per_check, "check_id")?
        .into_iter()
        .zip(per_check.column("n").context("n")?.cast(&DataType::UInt64).context("n")?.u64().context("n")?.iter())
        .map(|(id, n)| (id.unwrap_or_default(), n.unwrap_or(0)))
        .collect();
    let count = |id: &str| per_check.get(id).copied().unwrap_or(0);
    let skipped: Vec<&str> = detect::skipped(&[], &opts.params).into_iter().map(|(id, _)| id).collect();
    let checks: Vec<CheckCount> = detect::CHECKS
        .iter()
        .map(|k| CheckCount {
            check_id: &k.id,
            title: &k.title,
            severity: &k.severity,
            findings: count(&k.id),
            skipped: skipped.contains(&k.id.as_str()),
        })
        .collect();
    let of_check =
        |id: &str| -> Result<LazyFrame> { Ok(findings.clone().filter(col("check_id").eq(lit(id.to_string())))) };
    crate::query::spill::memtrace("report: detect");

    // ---- root: `root`'s summary and rows, over time; the checks' counts.
    let summary: Option<RootSummary> = rows(query::root::summary(ev.clone()), "root summary")?.into_iter().next();
    let to_act = findings.clone().filter(
        col("check_id").is_in(lit(Series::new("checks".into(), actions::FINDING_CHECKS)).implode(false), false),
    );
    let keys = ["check_id", "principal", "severity", "outcome"];
    let finding_groups = to_act
        .clone()
        // A missing principal and an empty one are the same "(no principal)".
        .with_column(col("principal").fill_null(lit("")))
        .group_by(keys.map(col))
        .agg([col("title").first(), len().cast(DataType::UInt64).alias("count")])
        .sort(keys, Default::default());
    let root = Root {
        events_total: summary.as_ref().map_or(0, |s| s.events),
        summary,
        over_time: over_time(
            &ev.clone().filter(query::root::is_root_usage()),
            bucket,
            span,
            &[("console_logins", query::is_console_login()), ("other_events", query::is_console_login().not())],
        )?,
        events: rows(query::root::events(ev.clone(), false).limit(max_rows), "root events")?,
        checks,
        // The findings that are action items (`actions::FINDING_CHECKS`), as `detect` gives them.
        findings: rows(to_act.limit(max_rows), "findings to act on")?,
        findings_total: actions::FINDING_CHECKS.iter().map(|id| count(id)).sum(),
        accounts: root_accounts(&ev)?,
        finding_groups: rows(finding_groups, "findings to act on per principal")?,
    };

    crate::query::spill::memtrace("report: root");
    // ---- principals: `activity`, dormant principals (`unused` rows with no events), groups.
    let analysis = match &opts.authz {
        Some(az) => {
            let mut a = unused::analyze(az, ev.clone())?;
            a.scope_resources(ev.clone(), None)?;
            Some(a)
        }
        None => None,
    };
    let unused_rows: Option<Vec<UnusedRow>> = match &analysis {
        Some(a) => Some(typed_rows(&a.summary()?, "unused")?),
        None => None,
    };
    let mut principals = Principals {
        activity: rows(query::activity::per_principal(ev.clone())?, "activity")?,
        dormant: None,
        groups: None,
        group_members: None,
        group_by_action: None,
    };
    if let (Some(az), Some(u)) = (&opts.authz, &unused_rows) {
        principals.dormant = Some(u.iter().filter(|r| r.events == 0).cloned().collect());
        let groups = query::activity::group_members(az);
        let answer = query::activity::by_group(ev.clone(), &groups).context("activity by group")?;
        for (name, lf) in answer.sections {
            match name.as_str() {
                "groups" => principals.groups = Some(rows(lf, "activity by group: groups")?),
                "members" => principals.group_members = Some(rows(lf, "activity by group: members")?),
                "by_action" => principals.group_by_action = Some(rows(lf, "activity by group: by_action")?),
                other => {
                    return Err(shape_error("activity by group", format!("a section {other} the report does not hold")))
                }
            }
        }
    }

    crate::query::spill::memtrace("report: principals");
    // ---- MFA posture: CIS-4.2 and TS-NO-MFA-SESSION findings, per principal.
    let mfa_rows = of_check("CIS-4.2")?.with_column(lit("console_sign_in").alias("kind")).select([
        col("kind"),
        col("principal"),
        col("event_time"),
        col("event_name"),
        col("source_ip"),
    ]);
    let per_principal = concat(
        [
            of_check("CIS-4.2")?.with_column(lit(true).alias("_console")),
            of_check("TS-NO-MFA-SESSION")?.with_column(lit(false).alias("_console")),
        ],
        UnionArgs::default(),
    )
    .context("mfa")?
    .group_by([col("principal")])
    .agg([
        col("_console").cast(DataType::UInt32).sum().alias("console_sign_ins_without_mfa"),
        col("_console").not().cast(DataType::UInt32).sum().alias("calls_without_mfa"),
        col("source_ip").drop_nulls().n_unique().cast(DataType::UInt32).alias("source_ips"),
        col(c::EVENT_TIME).min().alias("first_seen"),
        col(c::EVENT_TIME).max().alias("last_seen"),
    ])
    .with_column((col("console_sign_ins_without_mfa") + col("calls_without_mfa")).alias("total"))
    .sort(
        ["total", "principal"],
        SortMultipleOptions::default().with_order_descending_multi([true, false]).with_maintain_order(true),
    );
    let mfa = Mfa {
        principals: rows(per_principal, "mfa per principal")?,
        console_sign_ins: rows(mfa_rows.limit(max_rows), "mfa sign-ins")?,
        console_sign_ins_total: count("CIS-4.2"),
    };

    crate::query::spill::memtrace("report: mfa");
    // ---- failures: `failures` and `failures --denied`, over time.
    let denied = query::is_denied();
    let failures = Failures {
        over_time: over_time(
            &ev,
            bucket,
            span,
            &[("denied", denied.clone()), ("other_errors", query::is_error().and(denied.not()))],
        )?,
        failures: rows(query::failures::grouped(ev.clone(), false), "failures")?,
        denied: rows(query::failures::grouped(ev.clone(), true), "denied")?,
        console_sign_in_failures: rows(
            query::failures::console_failures(ev.clone()).limit(max_rows),
            "sign-in failures",
        )?,
        console_sign_in_failures_total: count_of(&ev, query::is_console_failure(), "sign-in failures")?,
    };

    crate::query::spill::memtrace("report: failures");
    // ---- unused permissions: `unused`'s rows and each principal's least-privilege policy.
    let unused = match (&analysis, unused_rows) {
        (Some(a), Some(principals)) => {
            let mut policies = Vec::new();
            for r in &principals {
                let policy = a.least_privilege(&r.principal)?;
                policies.push(PolicyOf { principal: r.principal.clone(), name: r.name.clone(), policy });
            }
            Some(Unused { principals, policies })
        }
        _ => None,
    };

    // ---- credentials: `unused --credential-report`'s access keys, and the users' posture.
    let credentials = match &opts.credential_report {
        Some((path, text)) => {
            let keys = typed_rows(&unused::credential_findings(text, opts.stale_days, opts.as_of_ms)?, "access keys")?;
            let users = credentials::users(text, opts.as_of_ms)?;
            Some(credentials::section(path, keys, users, opts.stale_days))
        }
        None => None,
    };

    crate::query::spill::memtrace("report: credentials");
    // ---- sessions: the TS-SSM-SESSION events, per session and per (principal, target).
    // The events by their ids, as a list (not a join: the streaming join held 0.2 GB over 10 M
    // events for 19 k sessions' events).
    let ssm_ids = of_check("TS-SSM-SESSION")?
        .select([col(c::EVENT_ID).drop_nulls().unique()])
        .run()
        .context("SSM sessions")?
        .column(c::EVENT_ID)
        .context(c::EVENT_ID)?
        .as_materialized_series()
        .clone();
    let ssm = ev
        .clone()
        .filter(col(c::EVENT_ID).is_in(lit(ssm_ids).implode(false), false))
        .select([
            col(c::EVENT_TIME),
            col(c::EVENT_ID),
            col(c::EVENT_NAME),
            col(c::PRINCIPAL),
            col(c::SOURCE_IP),
            col(c::ERROR_CODE),
            col(c::REQUEST_PARAMETERS).str().extract(lit(r#""target"\s*:\s*"([^"]*)""#), 1).alias("target"),
            col(c::REQUEST_PARAMETERS)
                .str()
                .extract(lit(r#""sessionId"\s*:\s*"([^"]*)""#), 1)
                .fill_null(col(c::RESPONSE_ELEMENTS).str().extract(lit(r#""sessionId"\s*:\s*"([^"]*)""#), 1))
                .alias("session_id"),
        ])
        .sort([c::EVENT_TIME, c::EVENT_ID], query::ascending(2))
        .run()
        .context("SSM sessions")?;
    let sessions = sessions(&ssm, opts.max_rows)?;

    crate::query::spill::memtrace("report: sessions");
    // ---- policy conditions: TS-OUTSIDE-NETWORK and TS-OUTSIDE-HOURS findings, per principal.
    let cond = concat(
        [
            of_check("TS-OUTSIDE-NETWORK")?.with_column(lit(true).alias("_net")),
            of_check("TS-OUTSIDE-HOURS")?.with_column(lit(false).alias("_net")),
        ],
        UnionArgs::default(),
    )
    .context("conditions")?
    .group_by([col("principal")])
    .agg([
        col("_net").cast(DataType::UInt32).sum().alias("outside_network"),
        col("source_ip").filter(col("_net")).drop_nulls().n_unique().cast(DataType::UInt32).alias("outside_ips"),
        col("source_ip")
            .filter(col("_net"))
            .drop_nulls()
            .unique()
            .sort(Default::default())
            .head(Some(3))
            .str()
            .join(", ", true)
            .alias("sample_ips"),
        col("_net").not().cast(DataType::UInt32).sum().alias("outside_hours"),
        col(c::EVENT_TIME).min().alias("first_seen"),
        col(c::EVENT_TIME).max().alias("last_seen"),
    ])
    .with_column((col("outside_network") + col("outside_hours")).alias("total"))
    .sort(
        ["total", "principal"],
        SortMultipleOptions::default().with_order_descending_multi([true, false]).with_maintain_order(true),
    );
    let conditions = Conditions {
        allowed_cidrs: opts.allowed_cidrs.clone(),
        allowed_hours: opts.params.allowed_hours.iter().map(|h| h.text.clone()).collect(),
        network_checked: !opts.params.allowed_cidrs.is_empty(),
        hours_checked: !opts.params.allowed_hours.is_empty(),
        principals: rows(cond, "conditions per principal")?,
    };

    crate::query::spill::memtrace("report: conditions");
    let mut report = Report {
        title: opts.title.clone(),
        generated_at: format_ms(Utc::now().timestamp_millis()),
        as_of: format_ms(opts.as_of_ms),
        inputs: opts.inputs.iter().map(|p| crate::fs::display_path(p)).collect(),
        filters: opts.filters.clone(),
        scope,
        root,
        principals,
        mfa,
        failures,
        unused,
        credentials,
        sessions,
        conditions,
        actions: Actions::default(),
    };
    // ---- action items: from the sections above, ranked by severity.
    let items = actions::items(&report);
    report.actions = Actions { counts: SeverityCounts::of(&items), items };
    Ok(report)
}

/// SSM Session Manager sessions: one row per session id (its StartSession gives principal and target;
/// resumes and terminations are matched by session id), and counts per (principal, target).
fn sessions(df: &DataFrame, max_rows: usize) -> Result<Sessions> {
    let [time, id, name, principal, ip, error, target, session] =
        ["event_time", c::EVENT_ID, c::EVENT_NAME, c::PRINCIPAL, c::SOURCE_IP, c::ERROR_CODE, "target", "session_id"]
            .map(|n| strings(df, n));
    let (time, _id, name, principal, ip, error, target, session) =
        (time?, id?, name?, principal?, ip?, error?, target?, session?);
    let times: Vec<Option<i64>> = {
        let t = df.column(c::EVENT_TIME).context("time")?.cast(&DataType::Int64).context("time")?;
        t.i64().context("time")?.iter().collect()
    };
    drop(time);
    #[derive(Default)]
    struct S {
        principal: String,
        target: Option<String>,
        source_ip: Option<String>,
        started: Option<i64>,
        resumed: u64,
        terminated: Option<i64>,
        failed: u64,
    }
    let mut by_id: BTreeMap<String, S> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for i in 0..df.height() {
        let key = session[i].clone().unwrap_or_else(|| format!("(no session id: event {i})"));
        let s = by_id.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            S { principal: principal[i].clone().unwrap_or_default(), ..Default::default() }
        });
        if error[i].as_deref().is_some_and(|e| !e.is_empty()) {
            s.failed += 1;
        }
        match name[i].as_deref() {
            Some("StartSession") => {
                s.principal = principal[i].clone().unwrap_or_default();
                s.target = target[i].clone();
                s.source_ip = ip[i].clone();
                s.started = times[i];
            }
            Some("ResumeSession") => s.resumed += 1,
            Some("TerminateSession") => s.terminated = times[i],
            _ => {}
        }
    }
    let unknown = "(unknown: no StartSession in the input)";
    let per_session: Vec<Session> = order
        .iter()
        .map(|k| {
            let s = &by_id[k];
            Session {
                session_id: k.clone(),
                principal: s.principal.clone(),
                target: s.target.clone().unwrap_or_else(|| unknown.into()),
                source_ip: s.source_ip.clone(),
                started: s.started.map(format_ms),
                resumed: s.resumed,
                terminated: s.terminated.map(format_ms),
                failed_calls: s.failed,
            }
        })
        .collect();
    // Per (principal, target): event counts by kind, so that their sum is TS-SSM-SESSION's count.
    let mut per_target: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    let mut span: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for i in 0..df.height() {
        let key = session[i].clone().unwrap_or_else(|| format!("(no session id: event {i})"));
        let s = &by_id[&key];
        let k = (s.principal.clone(), s.target.clone().unwrap_or_else(|| unknown.into()));
        let slot = match name[i].as_deref() {
            Some("StartSession") => 0,
            Some("ResumeSession") => 1,
            _ => 2,
        };
        per_target.entry(k.clone()).or_default()[slot] += 1;
        if let Some(t) = times[i] {
            let e = span.entry(k).or_insert((t, t));
            e.0 = e.0.min(t);
            e.1 = e.1.max(t);
        }
    }
    let mut by_target: Vec<SessionTarget> = per_target
        .into_iter()
        .map(|((principal, target), n)| {
            let (a, b) = span
                .get(&(principal.clone(), target.clone()))
                .copied()
                .map_or((None, None), |(a, b)| (Some(a), Some(b)));
            SessionTarget {
                principal,
                target,
                starts: n[0],
                resumes: n[1],
                terminates: n[2],
                events: n[0] + n[1] + n[2],
                first_seen: a.map(format_ms),
                last_seen: b.map(format_ms),
            }
        })
        .collect();
    by_target.sort_by(|a, b| {
        b.events.cmp(&a.events).then_with(|| (&a.principal, &a.target).cmp(&(&b.principal, &b.target)))
    });
    let sessions_total = per_session.len() as u64;
    let mut per_session = per_session;
    per_session.truncate(max_rows);
    Ok(Sessions { events: df.height() as u64, sessions: per_session, sessions_total, by_target })
}

/// Days between two instants, as the credential checks count them.
pub fn days_between(from_ms: i64, to_ms: i64) -> i64 {
    (to_ms - from_ms) / 86_400_000
}
