//! The log view of event rows: `timeline --format table` (#11). One line per event, as a log reads:
//! time, who (the principal, short), what (`service:EventName`), from where (source IP), how it
//! ended (`ok` or the error code) and the request's parameters in brief. Lines are written as the
//! rows come, never held whole, so the columns have fixed widths, fitted to the terminal once
//! before the first line; `--wide` leaves every cell whole. `--columns` and the data formats write
//! the rows' own columns instead (see `write_sections`, `write_stream`).

use std::io::Write;

use polars::prelude::*;

use super::{io_err, open_output, Sink};
use crate::error::{PolarsContext, Result};
use crate::ingest::frame::col_name as c;
use crate::time::{format_ms_in, Zone};

/// A column of the log: its title, its natural width and the width it may shrink to.
#[derive(Debug, Clone, Copy)]
struct Column {
    title: &'static str,
    width: usize,
    floor: usize,
}

/// The request summary's column takes the rest of the line; below this it is left out.
const REQUEST_MIN: usize = 8;
/// Fitting leaves the request summary at least this much before it stops narrowing the others.
const REQUEST_WANTED: usize = 24;

/// The widths of one log view: the fixed columns, then the request summary (`None`: unlimited,
/// `Some(0)`: left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    titles: Vec<&'static str>,
    widths: Vec<usize>,
    request: Option<usize>,
    total: Option<usize>,
}

impl Layout {
    /// The columns for rows with (`pivot`) or without a session pivot, times shown in `zone`,
    /// fitted into `total` characters when given.
    pub fn new(pivot: bool, zone: Zone, total: Option<usize>) -> Self {
        // A time is 20 characters in UTC (`2024-07-30T21:31:15Z`), 25 with an offset.
        let time = if zone == Zone::Utc { 20 } else { 25 };
        let mut cols = Vec::new();
        if pivot {
            cols.push(Column { title: "pivot", width: 27, floor: 27 });
        }
        cols.extend([
            Column { title: "time", width: time, floor: time },
            Column { title: "principal", width: 24, floor: 10 },
            Column { title: "event", width: 36, floor: 14 },
            Column { title: "source_ip", width: 15, floor: 15 },
            Column { title: "outcome", width: 14, floor: 8 },
        ]);
        let mut widths: Vec<usize> = cols.iter().map(|c| c.width).collect();
        let fixed = |w: &[usize]| w.iter().map(|w| w + 2).sum::<usize>();
        let request = total.map(|total| {
            // Narrow the widest column that can give, until the request summary has room.
            while fixed(&widths) + REQUEST_WANTED > total {
                let Some(j) = (0..cols.len()).filter(|j| widths[*j] > cols[*j].floor).max_by_key(|j| widths[*j]) else {
                    break;
                };
                widths[j] -= 1;
            }
            let rest = total.saturating_sub(fixed(&widths));
            if rest >= REQUEST_MIN {
                rest
            } else {
                0
            }
        });
        Layout { titles: cols.iter().map(|c| c.title).collect(), widths, request, total }
    }

    /// One line: each cell padded (or, when fitted, cut with `…`) to its column's width.
    fn line(&self, cells: &[String], request: &str) -> String {
        let mut out = String::new();
        for (s, w) in cells.iter().zip(&self.widths) {
            let s = if self.total.is_some() { cut(s, *w) } else { s.clone() };
            out.push_str(&format!("{s:<w$}  "));
        }
        match self.request {
            Some(0) => {}
            Some(w) => out.push_str(&cut(request, w)),
            None => out.push_str(request),
        }
        let out = out.trim_end().to_string();
        // On a terminal narrower than the columns' floors, the line itself is cut.
        match self.total {
            Some(t) if out.chars().count() > t => cut(&out, t),
            _ => out,
        }
    }

    fn header(&self) -> (String, String) {
        let titles: Vec<String> = self.titles.iter().map(|t| t.to_string()).collect();
        let rules: Vec<String> = self.widths.iter().map(|w| "-".repeat(*w)).collect();
        let request_rule = "-".repeat(self.request.unwrap_or(7).min(7));
        (self.line(&titles, "request"), self.line(&rules, &request_rule))
    }
}

/// `s` in at most `w` characters, cut with `…`.
fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        s.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// Text for a terminal: line breaks and tabs as spaces, other control characters escaped (#13).
fn shown(s: &str) -> String {
    crate::fs::printable(&s.replace(['\n', '\t', '\r'], " ")).into_owned()
}

/// Who, short: the ARN's resource without `user/` or `assumed-role/` (`alice`, `role/admin`,
/// `Admin/alice@example.com`, `root`); else the user name or the access key.
pub fn short_principal(arn: Option<&str>, user: Option<&str>, key: Option<&str>) -> String {
    fn present(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    match present(arn) {
        Some(a) if a.starts_with("arn:") => {
            let res = a.splitn(6, ':').nth(5).unwrap_or(a);
            let res = res.strip_prefix("user/").unwrap_or(res);
            res.strip_prefix("assumed-role/").unwrap_or(res).to_string()
        }
        Some(a) => a.to_string(),
        None => present(user).or(present(key)).unwrap_or("-").to_string(),
    }
}

/// The request's parameters in brief: `name=value` pairs of the JSON object, nested objects
/// flattened with dots (two levels, then `{…}`), short lists of plain values written out, longer
/// ones counted; empty values and S3's `Host` (the bucket again) left out. Text that is not JSON is
/// shown as it is.
pub fn request_summary(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => {
            let mut parts = Vec::new();
            flatten("", &v, 0, &mut parts);
            parts.join(" ")
        }
        Err(_) => json.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn flatten(key: &str, v: &serde_json::Value, depth: usize, out: &mut Vec<String>) {
    use serde_json::Value as J;
    let named = |text: String| if key.is_empty() { text } else { format!("{key}={text}") };
    match v {
        J::Null => {}
        J::String(s) if s.is_empty() => {}
        J::String(s) => out.push(named(s.clone())),
        J::Object(m) if m.is_empty() => {}
        J::Object(_) if depth >= 2 => out.push(named("{…}".into())),
        J::Object(m) => {
            for (k, x) in m {
                if depth == 0 && k == "Host" {
                    continue;
                }
                let k = if key.is_empty() { k.clone() } else { format!("{key}.{k}") };
                flatten(&k, x, depth + 1, out);
            }
        }
        J::Array(a) if a.is_empty() => {}
        J::Array(a) if a.len() <= 3 && a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            let items: Vec<String> =
                a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect();
            out.push(named(format!("[{}]", items.join(","))));
        }
        J::Array(a) => out.push(named(format!("[{} items]", a.len()))),
        other => out.push(named(other.to_string())),
    }
}

/// Write event rows (a timeline's columns, and `pivot` when present) as the log view, as the
/// streaming engine produces them.
pub fn write_log(sink: &Sink<'_>, mut lf: LazyFrame) -> Result<()> {
    let schema = lf.collect_schema().context("planning the timeline")?;
    let pivot = schema.contains("pivot");
    let layout = Layout::new(pivot, sink.zone, sink.width);
    let mut select = vec![];
    if pivot {
        select.push(col("pivot").cast(DataType::String));
    }
    select.push(col(c::EVENT_TIME).dt().timestamp(TimeUnit::Milliseconds).alias(c::EVENT_TIME));
    for name in [
        c::PRINCIPAL,
        c::USER_NAME,
        c::ACCESS_KEY_ID,
        c::SOURCE_IP,
        c::EVENT_SOURCE,
        c::EVENT_NAME,
        c::ERROR_CODE,
        c::REQUEST_PARAMETERS,
    ] {
        select.push(col(name).cast(DataType::String));
    }
    let lf = lf.select(select);
    let mut w = open_output(sink.output)?;
    let (titles, rules) = layout.header();
    writeln!(w, "{titles}\n{rules}").map_err(io_err)?;
    crate::query::stream(lf, |df| {
        let text =
            |name: &str| -> Result<StringChunked> { Ok(df.column(name).context(name)?.str().context(name)?.clone()) };
        let times = df.column(c::EVENT_TIME).context("event_time")?.i64().context("event_time")?.clone();
        let pivots = if pivot { Some(text("pivot")?) } else { None };
        let (principal, user, key) = (text(c::PRINCIPAL)?, text(c::USER_NAME)?, text(c::ACCESS_KEY_ID)?);
        let (ip, source, name) = (text(c::SOURCE_IP)?, text(c::EVENT_SOURCE)?, text(c::EVENT_NAME)?);
        let (error, request) = (text(c::ERROR_CODE)?, text(c::REQUEST_PARAMETERS)?);
        for i in 0..df.height() {
            let mut cells = Vec::with_capacity(6);
            if let Some(p) = &pivots {
                cells.push(p.get(i).unwrap_or_default().to_string());
            }
            cells.push(times.get(i).map(|t| format_ms_in(t, sink.zone)).unwrap_or_default());
            cells.push(short_principal(principal.get(i), user.get(i), key.get(i)));
            let service = source.get(i).unwrap_or_default();
            let service = service.strip_suffix(".amazonaws.com").unwrap_or(service);
            cells.push(format!("{service}:{}", name.get(i).unwrap_or_default()));
            cells.push(ip.get(i).unwrap_or_default().to_string());
            cells.push(error.get(i).filter(|e| !e.is_empty()).unwrap_or("ok").to_string());
            let cells: Vec<String> = cells.iter().map(|s| shown(s)).collect();
            let summary = shown(&request.get(i).map(request_summary).unwrap_or_default());
            writeln!(w, "{}", layout.line(&cells, &summary)).map_err(io_err)?;
        }
        Ok(())
    })?;
    if layout.request == Some(0) {
        writeln!(w, "(the request column does not fit: --wide shows it)").map_err(io_err)?;
    }
    w.flush().map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_shortened_to_who() {
        let s = |arn: &str| short_principal(Some(arn), None, None);
        assert_eq!(s("arn:aws:iam::457448411975:user/christophe"), "christophe");
        assert_eq!(s("arn:aws:iam::457448411975:role/admin"), "role/admin");
        assert_eq!(s("arn:aws:sts::1:assumed-role/Admin/alice@example.com"), "Admin/alice@example.com");
        assert_eq!(s("arn:aws:iam::1:root"), "root");
        assert_eq!(s("ec2.amazonaws.com"), "ec2.amazonaws.com");
        assert_eq!(short_principal(Some(""), None, Some("AKIA1")), "AKIA1");
        assert_eq!(short_principal(None, None, None), "-");
    }

    #[test]
    fn requests_are_summarized_compactly() {
        let s = |j: &str| request_summary(j);
        assert_eq!(
            s(r#"{"logging":"","bucketName":"b","Host":"b.s3.amazonaws.com"}"#),
            "bucketName=b",
            "empty values and S3's Host are left out"
        );
        assert_eq!(s(r#"{"durationSeconds": 900, "roleArn": "arn:r"}"#), "durationSeconds=900 roleArn=arn:r");
        assert_eq!(s(r#"{"filter":{"deep":{"a":{"b":1}},"name":"x"}}"#), "filter.deep={…} filter.name=x");
        assert_eq!(s(r#"{"ids":["i-1","i-2"],"set":{"items":[{},{},{},{}]}}"#), "ids=[i-1,i-2] set.items=[4 items]");
        assert_eq!(s("not json\n at all"), "not json at all");
        assert_eq!(s("null"), "");
    }

    /// The line fits the width given, the request summary taking what the others leave; without a
    /// width (`--wide`) nothing is cut.
    #[test]
    fn lines_fit_the_width() {
        let cells: Vec<String> =
            ["2024-07-30T21:31:15Z", "a-rather-long-principal-name/session", "ec2:GetPasswordData", "10.0.0.1", "ok"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let request = "instanceId=i-gspajwz8z9wrutsz and a great deal more text after it";
        for total in [60, 80, 100, 120, 200] {
            let layout = Layout::new(false, Zone::Utc, Some(total));
            let line = layout.line(&cells, request);
            assert!(line.chars().count() <= total, "{total}: {line}");
            assert!(line.starts_with("2024-07-30T21:31:15Z  "), "{line}");
            if total >= 120 {
                assert!(line.contains("instanceId=i-"), "{total}: {line}");
            }
        }
        let wide = Layout::new(true, Zone::Utc, None).line(&[vec!["used".to_string()], cells].concat(), request);
        assert!(wide.starts_with("used  ") && wide.ends_with(request), "{wide}");
    }
}
