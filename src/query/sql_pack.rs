//! The store as a lake other engines query: the `CREATE TABLE` statement for each engine and the
//! built-in questions as SQL with the same semantics, columns and order as the local commands
//! (`root`, `activity`, `failures`, `detect`). The detection checks come from the same list
//! (`query::detect::CHECKS`): a check whose Sigma rule is a list of event names (and source) becomes
//! that `IN` list; the others have their SQL here, and a test fails if a check has none. Integration tests run the pack on DuckDB and Spark and compare with the
//! local answers.

use crate::ingest::frame::{self, col_name as c};
use crate::query::detect::{Rule, ATTEMPTS, ATTEMPT_PREFIX, CHECKS};
use crate::query::root::COLUMNS as ROOT_COLUMNS;
use crate::query::SERVICE_SUFFIX_RE;

/// The SQL dialects the pack is written in.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Spark,
    Trino,
    Athena,
    Duckdb,
}

/// The regular expression for `requestParameters.userName` (no backslashes, see `SERVICE_SUFFIX_RE`).
pub const TARGET_USER_RE: &str = r#""userName" *: *"([^"]*)""#;

/// SQL conditions of the checks whose rule is not a list of values (by check id).
const CHECK_SQL: &[(&str, &str)] = &[
    ("CIS-4.1", "(error_code LIKE '%UnauthorizedOperation' OR error_code LIKE 'AccessDenied%')"),
    (
        "CIS-4.2",
        "(event_name = 'ConsoleLogin' AND lower(coalesce(mfa_used, '')) <> 'yes' AND identity_type = 'IAMUser' \
         AND console_login = 'Success')",
    ),
    ("CIS-4.3", ROOT_USAGE),
    ("CIS-4.6", "(event_name = 'ConsoleLogin' AND error_message = 'Failed authentication')"),
    (
        "TS-ROOT-ACCESS-KEY",
        "(event_name = 'CreateAccessKey' AND identity_type = 'Root' AND {target_user} IS NULL)",
    ),
    (
        "TS-CRED-FOR-OTHER-USER",
        "(event_name IN ('CreateAccessKey', 'CreateLoginProfile') AND {target_user} IS NOT NULL \
         AND NOT coalesce(identity_type = 'IAMUser' AND {target_user} = user_name, false))",
    ),
    ("TS-DENIED-THEN-SUCCEEDED", "{denied_then_succeeded}"),
    (
        "TS-NO-MFA-SESSION",
        "coalesce(identity_type = 'IAMUser' AND session_mfa = false AND event_name <> 'ConsoleLogin' AND {own_call}, false)",
    ),
    // Checks that need --allowed-cidr / --allowed-hours: without them `detect` skips them, and so does
    // the pack (write the condition for your network and hours into detect.sql to add them).
    ("TS-OUTSIDE-NETWORK", "{needs_parameters}"),
    ("TS-OUTSIDE-HOURS", "{needs_parameters}"),
];

/// A call the principal made itself (`detect`'s `own_call`): no invokedBy, not a service event.
const OWN_CALL: &str = "(invoked_by IS NULL AND (event_type IS NULL OR event_type <> 'AwsServiceEvent'))";
const ROOT_USAGE: &str =
    "(identity_type = 'Root' AND invoked_by IS NULL AND (event_type IS NULL OR event_type <> 'AwsServiceEvent'))";
const IS_ERROR: &str = "(error_code IS NOT NULL AND error_code <> '')";
/// `query::is_denied` (`iam::errors::classify`): with or without EC2's `Client.`/`Server.` prefix.
const IS_DENIED: &str = "(error_code LIKE 'AccessDenied%' OR error_code LIKE '%UnauthorizedOperation' \
     OR error_code = 'VpceAccessDenied' OR error_code LIKE 'Client.AccessDenied%' \
     OR error_code LIKE 'Server.AccessDenied%' OR error_code IN ('Client.VpceAccessDenied', 'Server.VpceAccessDenied'))";

fn string_type(d: Dialect) -> &'static str {
    match d {
        Dialect::Spark => "STRING",
        _ => "VARCHAR",
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn target_user() -> String {
    format!("NULLIF(regexp_extract(request_parameters, {}, 1), '')", quote(TARGET_USER_RE))
}

fn asc(cols: &[&str]) -> String {
    cols.iter().map(|c| format!("{c} ASC NULLS LAST")).collect::<Vec<_>>().join(", ")
}

/// `root.sql`: the same rows and order as `trailscope root`.
pub fn root(_d: Dialect) -> String {
    format!(
        "-- trailscope root: root-account usage (CIS 4.3), in time order.\nSELECT {}\nFROM events\nWHERE {ROOT_USAGE}\nORDER BY {}\n",
        ROOT_COLUMNS.join(", "),
        asc(&[c::EVENT_TIME, c::EVENT_ID])
    )
}

/// `failures.sql`: the same rows and order as `trailscope failures` (its first section).
pub fn failures(_d: Dialect) -> String {
    format!(
        "-- trailscope failures: failed requests grouped, most frequent first.\n\
         SELECT principal, event_source, event_name, error_code, count(*) AS count,\n  \
         min(event_time) AS first_seen, max(event_time) AS last_seen, min(error_message) AS sample_error_message\n\
         FROM events\nWHERE {IS_ERROR}\nGROUP BY principal, event_source, event_name, error_code\n\
         ORDER BY count DESC, {}\n",
        asc(&[c::PRINCIPAL, c::EVENT_SOURCE, c::EVENT_NAME, c::ERROR_CODE])
    )
}

fn distinct_present(col: &str) -> String {
    format!("count(DISTINCT CASE WHEN {col} <> '' THEN {col} END)")
}

/// `activity.sql`: the same rows and order as `trailscope activity`.
pub fn activity(d: Dialect) -> String {
    let top = match d {
        Dialect::Spark => "concat_ws(', ', transform(array_sort(collect_list(struct(rn, entry))), x -> x.entry))",
        Dialect::Duckdb => "string_agg(entry, ', ' ORDER BY rn)",
        Dialect::Trino | Dialect::Athena => "array_join(array_agg(entry ORDER BY rn), ', ')",
    };
    format!(
        "-- trailscope activity: one row per principal, busiest first.\n\
WITH ev AS (\n  SELECT *, regexp_replace(event_source, {svc}, '') AS service FROM events\n),\n\
main AS (\n  SELECT principal,\n    min(identity_type) AS principal_type,\n    min(account_id) AS account_id,\n    \
count(*) AS events,\n    sum(CASE WHEN {IS_ERROR} THEN 1 ELSE 0 END) AS errors,\n    min(event_time) AS first_seen,\n    \
max(event_time) AS last_seen,\n    {services} AS services,\n    count(DISTINCT event_source || ':' || event_name) AS actions,\n    \
{ips} AS source_ips,\n    {regions} AS regions,\n    {keys} AS access_keys,\n    {agents} AS user_agents\n  \
FROM ev GROUP BY principal\n),\n\
ranked AS (\n  SELECT principal, coalesce(service, '') || ' (' || CAST(n AS {str}) || ')' AS entry,\n    \
row_number() OVER (PARTITION BY principal ORDER BY n DESC, service ASC NULLS LAST) AS rn\n  \
FROM (SELECT principal, service, count(*) AS n FROM ev GROUP BY principal, service) s\n),\n\
top AS (\n  SELECT principal, {top} AS top_services FROM ranked WHERE rn <= 3 GROUP BY principal\n)\n\
SELECT main.principal, principal_type, account_id, events, errors, first_seen, last_seen, services, actions,\n  \
source_ips, regions, access_keys, user_agents, top.top_services\n\
FROM main LEFT JOIN top ON main.principal IS NOT DISTINCT FROM top.principal\n\
ORDER BY events DESC, main.principal ASC NULLS LAST\n",
        svc = quote(SERVICE_SUFFIX_RE),
        services = distinct_present("service"),
        ips = distinct_present(c::SOURCE_IP),
        regions = distinct_present(c::AWS_REGION),
        keys = distinct_present(c::ACCESS_KEY_ID),
        agents = distinct_present(c::USER_AGENT),
        str = string_type(d),
    )
}

fn finding_select(id: &str, title: &str, severity: &str) -> String {
    // A failed tampering or credential call is an attempt (detect::ATTEMPTS).
    let (title, severity) = match ATTEMPTS.iter().find(|(k, _)| *k == id) {
        Some((_, attempt)) => (
            format!(
                "CASE WHEN {IS_ERROR} THEN {} ELSE {} END",
                quote(&format!("{ATTEMPT_PREFIX}{title}")),
                quote(title)
            ),
            format!("CASE WHEN {IS_ERROR} THEN {} ELSE {} END", quote(attempt), quote(severity)),
        ),
        None => (quote(title), quote(severity)),
    };
    format!(
        "SELECT {} AS check_id, {title} AS title, {severity} AS severity, event_time, principal, event_name, \
         source_ip, event_id, error_code,\n    \
         CASE WHEN {IS_DENIED} THEN 'denied' WHEN {IS_ERROR} THEN 'failed' ELSE 'succeeded' END AS outcome",
        quote(id)
    )
}

/// How a check appears in the pack.
enum CheckSql {
    Condition(String),
    DeniedThenSucceeded,
    Skipped,
}

/// A Sigma rule that is `field|cased: [values]` items only, as `column IN (...) AND ...`.
fn value_lists(rule: &crate::sigma::Rule) -> Option<String> {
    let items = rule.cased_value_lists()?;
    let mut parts = Vec::new();
    for (path, values) in items {
        let (_, column) = frame::CLOUDTRAIL_NAMES.iter().find(|(p, _)| *p == path)?;
        parts.push(match values.as_slice() {
            [one] => format!("{column} = {}", quote(one)),
            _ => format!("{column} IN ({})", values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")),
        });
    }
    Some(format!("({})", parts.join(" AND ")))
}

/// The SQL of a check.
fn check_condition(id: &str, rule: &Rule) -> Result<CheckSql, String> {
    if let Some(cond) = match rule {
        Rule::Sigma { rule, .. } => value_lists(rule),
        _ => None,
    } {
        return Ok(CheckSql::Condition(cond));
    }
    let sql = CHECK_SQL
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, s)| *s)
        .ok_or_else(|| format!("check {id} has no SQL in sql_pack::CHECK_SQL"))?;
    Ok(match sql {
        "{denied_then_succeeded}" => CheckSql::DeniedThenSucceeded,
        "{needs_parameters}" => CheckSql::Skipped,
        _ => CheckSql::Condition(
            sql.replace("{target_user}", &target_user())
                .replace("{is_error}", IS_ERROR)
                .replace("{own_call}", OWN_CALL),
        ),
    })
}

/// The "denied at least 5 times, then succeeded" check as a subquery of findings.
fn denied_then_succeeded(select: &str) -> String {
    let order = asc(&[c::EVENT_TIME, c::EVENT_ID]);
    format!(
        "{select}\n  FROM (\n    SELECT *, row_number() OVER (PARTITION BY principal ORDER BY {order}) AS rn_ok\n    FROM (\n      \
         SELECT *, sum(CASE WHEN {IS_DENIED} THEN 1 ELSE 0 END) OVER (PARTITION BY principal ORDER BY {order} \
         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS denied_so_far\n      \
         FROM events WHERE principal IS NOT NULL AND principal <> '' AND {OWN_CALL}\n    ) t\n    \
         WHERE denied_so_far >= 5 AND NOT {IS_ERROR}\n  ) u\n  WHERE rn_ok = 1"
    )
}

/// `detect.sql`: every check of `trailscope detect`, same rows and order.
pub fn detect(_d: Dialect) -> Result<String, String> {
    let mut parts = Vec::new();
    for k in CHECKS.iter() {
        let select = finding_select(&k.id, &k.title, &k.severity);
        match check_condition(&k.id, &k.rule)? {
            CheckSql::Condition(cond) => parts.push(format!("  {select}\n  FROM events WHERE {cond}")),
            CheckSql::DeniedThenSucceeded => parts.push(format!("  {}", denied_then_succeeded(&select))),
            CheckSql::Skipped => {}
        }
    }
    Ok(format!(
        "-- trailscope detect: CIS AWS Foundations monitoring controls and more; one row per finding.\n\
         SELECT * FROM (\n{}\n) findings\nORDER BY {}\n",
        parts.join("\n  UNION ALL\n"),
        asc(&["event_time", "check_id", "event_id"])
    ))
}

fn sql_type(dtype: &polars::prelude::DataType, d: Dialect) -> &'static str {
    use polars::prelude::DataType;
    match dtype {
        DataType::Boolean => "BOOLEAN",
        DataType::Datetime(..) => "TIMESTAMP",
        _ => string_type(d),
    }
}

/// The statement that makes the lake a table named `events` (Hive partitions account/region/date).
pub fn create_table(d: Dialect, location: &str) -> String {
    let schema = frame::schema();
    let cols: Vec<String> = schema.iter().map(|(n, t)| format!("  {n} {}", sql_type(t, d))).collect();
    let loc = quote(location.trim_end_matches('/'));
    match d {
        Dialect::Spark => format!(
            "-- Spark: the lake as a partitioned table; partition values are read as strings.\n\
             CREATE TABLE IF NOT EXISTS events (\n{},\n  account STRING,\n  region STRING,\n  date STRING\n)\n\
             USING parquet\nPARTITIONED BY (account, region, date)\nLOCATION {loc};\n\
             -- After new ingests: register new partitions.\nMSCK REPAIR TABLE events;\n",
            cols.join(",\n")
        ),
        Dialect::Athena => format!(
            "-- Athena: partition projection, so new partitions need no MSCK REPAIR. List your accounts and\n\
             -- regions in the enum values (or use 'injected' and filter on them in every query).\n\
             CREATE EXTERNAL TABLE IF NOT EXISTS events (\n{}\n)\nPARTITIONED BY (account string, region string, `date` string)\n\
             STORED AS PARQUET\nLOCATION {loc}\nTBLPROPERTIES (\n  'projection.enabled' = 'true',\n  \
             'projection.account.type' = 'enum',\n  'projection.account.values' = '111111111111,222222222222',\n  \
             'projection.region.type' = 'enum',\n  'projection.region.values' = 'us-east-1,us-west-2,eu-west-1',\n  \
             'projection.date.type' = 'date',\n  'projection.date.format' = 'yyyy-MM-dd',\n  \
             'projection.date.range' = '2013-01-01,NOW',\n  'projection.date.interval' = '1',\n  \
             'projection.date.interval.unit' = 'DAYS',\n  \
             'storage.location.template' = '{}/account=${{account}}/region=${{region}}/date=${{date}}'\n);\n",
            cols.iter().map(|c| c.to_lowercase()).collect::<Vec<_>>().join(",\n"),
            location.trim_end_matches('/')
        ),
        Dialect::Trino => format!(
            "-- Trino (Hive connector): partition columns last; then sync the partitions.\n\
             CREATE TABLE IF NOT EXISTS events (\n{},\n  account VARCHAR,\n  region VARCHAR,\n  \"date\" VARCHAR\n)\n\
             WITH (format = 'PARQUET', external_location = {loc}, partitioned_by = ARRAY['account', 'region', 'date']);\n\
             CALL system.sync_partition_metadata(current_schema, 'events', 'FULL');\n",
            cols.join(",\n")
        ),
        Dialect::Duckdb => format!(
            "-- DuckDB: a view over the Parquet files, partition values as strings.\n\
             CREATE OR REPLACE VIEW events AS\nSELECT * FROM read_parquet({}, hive_partitioning = true, hive_types_autocast = false);\n",
            quote(&format!("{}/**/*.parquet", location.trim_end_matches('/')))
        ),
    }
}

/// `used.sql`: the used-actions side of `trailscope unused` (the rows of `unused --used`): per
/// principal and IAM action, the successful calls and the last one. The event-to-action rules are
/// generated from the same data as the local mapping (`iam::actions`).
pub fn used(d: Dialect) -> String {
    use crate::iam::actions::{NO_PERMISSION, RENAMES, SOURCE_PREFIX};
    use crate::query::unused::NOT_CALLS;
    let first_label = match d {
        Dialect::Spark => "split(label, '[.]')[0]",
        _ => "split_part(label, '.', 1)",
    };
    let prefix_case: String =
        SOURCE_PREFIX.iter().map(|(s, p)| format!("      WHEN {} THEN {}\n", quote(s), quote(p))).collect();
    let rows: Vec<String> = RENAMES
        .iter()
        .flat_map(|(p, n, acts)| acts.iter().map(move |a| format!("({}, {}, {})", quote(p), quote(n), quote(a))))
        .collect();
    let values = match d {
        Dialect::Spark => format!("SELECT * FROM VALUES\n    {}\n    AS r(prefix, name, action)", rows.join(",\n    ")),
        _ => format!("SELECT * FROM (VALUES\n    {}\n  ) AS r(prefix, name, action)", rows.join(",\n    ")),
    };
    let not_calls = NOT_CALLS.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", ");
    let no_permission = NO_PERMISSION.iter().map(|a| quote(&a.to_lowercase())).collect::<Vec<_>>().join(", ");
    let exercised = crate::iam::errors::sql_exercised();
    format!(
        "-- trailscope unused --used: the IAM actions each principal exercised: calls that succeeded or\n\
-- failed after authorization (NoSuch..., ...NotFound, DryRunOperation: see trailscope's iam::errors).\n\
WITH calls AS (\n  SELECT principal, event_time,\n    regexp_replace(event_source, {svc}, '') AS label,\n    \
coalesce(NULLIF(regexp_extract(event_name, {version}, 1), ''), event_name) AS name\n  FROM events\n  \
WHERE {exercised} AND (event_type IS NULL OR event_type NOT IN ({not_calls}))\n    \
AND event_source IS NOT NULL AND event_name IS NOT NULL\n),\n\
prefixed AS (\n  SELECT principal, event_time, name,\n    CASE label\n{prefix_case}      ELSE {first_label}\n    END AS prefix\n  FROM calls\n),\n\
renames AS (\n  {values}\n),\n\
mapped AS (\n  SELECT p.principal, p.event_time, coalesce(r.action, p.prefix || ':' || p.name) AS action,\n    \
r.action IS NULL AS constructed\n  FROM prefixed p LEFT JOIN renames r ON r.prefix = p.prefix AND r.name = p.name\n)\n\
SELECT principal, action, count(*) AS events, max(event_time) AS last_used\nFROM mapped\n\
WHERE NOT (constructed AND lower(action) IN ({no_permission}))\nGROUP BY principal, action\nORDER BY {}\n",
        asc(&["principal", "action"]),
        svc = quote(SERVICE_SUFFIX_RE),
        version = quote(VERSION_SUFFIX_RE),
    )
}

/// An API version suffix on an event name (`ListFunctions20150331`, `GetFunction20150331v2`,
/// `UpdateDistribution2017_03_25`): group 1 is the name without it (see `iam::actions::strip_version`).
const VERSION_SUFFIX_RE: &str = "^(.*[^0-9_])([0-9]{8}|[0-9]{4}_[0-9]{2}_[0-9]{2})(v[0-9]+)?$";

/// Every file of the pack: (file name, SQL).
pub fn pack(d: Dialect, location: &str) -> Result<Vec<(String, String)>, String> {
    Ok(vec![
        ("create_table.sql".into(), create_table(d, location)),
        ("root.sql".into(), root(d)),
        ("activity.sql".into(), activity(d)),
        ("failures.sql".into(), failures(d)),
        ("detect.sql".into(), detect(d)?),
        ("used.sql".into(), used(d)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_sql() {
        for k in CHECKS.iter() {
            if let Err(e) = check_condition(&k.id, &k.rule) {
                panic!("{e}");
            }
        }
        for (id, _) in CHECK_SQL {
            assert!(CHECKS.iter().any(|k| k.id == *id), "CHECK_SQL names unknown check {id}");
        }
    }

    #[test]
    fn no_backslashes_in_sql() {
        // Spark and Trino treat backslashes in string literals differently: the pack uses none.
        for d in [Dialect::Spark, Dialect::Trino, Dialect::Athena, Dialect::Duckdb] {
            for (name, sql) in pack(d, "s3://b/p/events").unwrap() {
                assert!(!sql.contains('\\'), "{name} ({d:?})");
            }
        }
    }
}
