//! The walk over CloudTrail's layout: which prefixes to list for a filter.

use chrono::{Datelike, NaiveDate, Utc};
use futures::StreamExt;
use indicatif::ProgressBar;

use super::list::{ListError, Listed, S3};
use super::{unsafe_key, KeyProblem};
use crate::error::Result;
use crate::layout::KeyInfo;
use crate::source::filter::Filter;

/// A bounded window of at most this many days is listed day by day; longer ones walk years and months.
const DIRECT_DAYS: i64 = 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `.../AWSLogs/`: organizations and accounts.
    AwsLogs,
    /// `AWSLogs/o-org/`: accounts.
    Org,
    /// `.../<account>/`: `CloudTrail/` and `CloudTrail-Digest/`.
    Account,
    /// `.../CloudTrail/`: regions.
    Trail,
    Region,
    Year(i32),
    Month(i32, u32),
    /// Everything below, listed without a delimiter.
    Leaf,
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Ends with `/`.
    pub(super) prefix: String,
    pub(super) kind: Kind,
    /// Segments the URL's prefix fixed below this node, next one last.
    pub(super) pinned: Vec<String>,
}

#[derive(Default)]
pub(super) struct Expansion {
    pub(super) children: Vec<Node>,
    pub(super) objects: Vec<Listed>,
    pub(super) refused: Vec<KeyProblem>,
}

/// What the filters let through, as ranges of delivery days.
pub(super) struct Plan {
    pub(super) filter: Filter,
    pub(super) digests: bool,
    pub(super) windowed: bool,
    /// First and last delivery day that may hold events of the window (`None`: unbounded).
    pub(super) lo: Option<NaiveDate>,
    pub(super) hi: Option<NaiveDate>,
}

pub(super) enum Span {
    Outside,
    Inside,
    Partial,
}

pub(super) fn date_of_ms(ms: i64) -> NaiveDate {
    chrono::DateTime::<Utc>::from_timestamp_millis(ms).map_or(NaiveDate::MIN, |t| t.date_naive())
}

impl Plan {
    pub(super) fn new(filter: Filter, digests: bool) -> Self {
        let keep = |d: NaiveDate| filter.prunes_key(&KeyInfo { account: None, region: None, date: Some(d) }).is_none();
        let late_days = filter.late_delivery.unwrap_or(crate::source::filter::DEFAULT_LATE_DELIVERY).num_days() + 3;
        // Filter::prunes_key decides; these searches only find where its answer changes.
        let lo = filter.from_ms.map(|f| {
            let mut d = date_of_ms(f) - chrono::Days::new(3);
            for _ in 0..10 {
                if keep(d) {
                    break;
                }
                d = d.succ_opt().unwrap_or(d);
            }
            d
        });
        let hi = filter.to_ms.map(|t| {
            let mut d = date_of_ms(t) + chrono::Days::new(late_days.max(0) as u64);
            for _ in 0..(late_days + 10) {
                if keep(d) {
                    break;
                }
                d = d.pred_opt().unwrap_or(d);
            }
            d
        });
        let windowed = filter.from_ms.is_some() || filter.to_ms.is_some();
        Plan { filter, digests, windowed, lo, hi }
    }

    pub(super) fn span(&self, first: NaiveDate, last: NaiveDate) -> Span {
        if !self.windowed {
            return Span::Inside;
        }
        let empty = matches!((self.lo, self.hi), (Some(lo), Some(hi)) if lo > hi);
        if empty || self.lo.is_some_and(|lo| last < lo) || self.hi.is_some_and(|hi| first > hi) {
            return Span::Outside;
        }
        if self.lo.is_none_or(|lo| first >= lo) && self.hi.is_none_or(|hi| last <= hi) {
            Span::Inside
        } else {
            Span::Partial
        }
    }

    pub(super) fn account_selected(&self, a: &str) -> bool {
        self.filter.accounts.is_empty() || self.filter.accounts.iter().any(|x| x == a)
    }

    pub(super) fn region_selected(&self, r: &str) -> bool {
        self.filter.regions.is_empty() || self.filter.regions.iter().any(|x| x == r)
    }

    /// The roots of the walk for the URL's prefix: `PREFIX/AWSLogs/`, or, when the prefix already
    /// reaches into the layout (`.../AWSLogs/123456789012/`), that node with its segments pinned.
    pub(super) fn roots(&self, prefix: &str) -> Vec<Node> {
        let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        match segments.iter().rposition(|s| *s == "AWSLogs") {
            None => vec![Node { prefix: format!("{prefix}AWSLogs/"), kind: Kind::AwsLogs, pinned: vec![] }],
            Some(i) => vec![Node {
                prefix: format!("{}/", segments[..=i].join("/")),
                kind: Kind::AwsLogs,
                pinned: segments[i + 1..].iter().rev().map(|s| s.to_string()).collect(),
            }],
        }
    }

    /// The node for child `seg` of `node`, `None` if the filters prune it.
    pub(super) fn child(&self, node: &Node, seg: &str, pinned: Vec<String>) -> Option<Node> {
        let prefix = format!("{}{seg}/", node.prefix);
        let make = |kind| Some(Node { prefix: prefix.clone(), kind, pinned: pinned.clone() });
        match node.kind {
            Kind::AwsLogs if seg.starts_with("o-") => make(Kind::Org),
            Kind::AwsLogs | Kind::Org => self.account_selected(seg).then(|| make(Kind::Account)).flatten(),
            Kind::Account => {
                let wanted = seg == "CloudTrail" || (seg == "CloudTrail-Digest" && self.digests);
                // A prefix naming another folder (CloudTrail-Insight) is taken as asked.
                let pinned_other = node.pinned.last().is_some_and(|p| p == seg);
                (wanted || (pinned_other && seg != "CloudTrail-Digest")).then(|| make(Kind::Trail)).flatten()
            }
            // Without a window a region is listed whole.
            Kind::Trail if !self.windowed => self.region_selected(seg).then(|| make(Kind::Leaf)).flatten(),
            Kind::Trail => self.region_selected(seg).then(|| make(Kind::Region)).flatten(),
            Kind::Region | Kind::Year(_) | Kind::Month(..) if !self.windowed => make(Kind::Leaf),
            Kind::Region => {
                let y: i32 = number(seg, 4)?;
                let (first, last) = (NaiveDate::from_ymd_opt(y, 1, 1)?, NaiveDate::from_ymd_opt(y, 12, 31)?);
                match self.span(first, last) {
                    Span::Outside => None,
                    Span::Inside => make(Kind::Leaf),
                    Span::Partial => make(Kind::Year(y)),
                }
            }
            Kind::Year(y) => {
                let m: u32 = number(seg, 2)?;
                let first = NaiveDate::from_ymd_opt(y, m, 1)?;
                let last = first.checked_add_months(chrono::Months::new(1))?.pred_opt()?;
                match self.span(first, last) {
                    Span::Outside => None,
                    Span::Inside => make(Kind::Leaf),
                    Span::Partial => make(Kind::Month(y, m)),
                }
            }
            Kind::Month(y, m) => {
                let d = NaiveDate::from_ymd_opt(y, m, number(seg, 2)?)?;
                match self.span(d, d) {
                    Span::Outside => None,
                    _ => make(Kind::Leaf),
                }
            }
            Kind::Leaf => make(Kind::Leaf),
        }
    }

    /// Day prefixes of a bounded short window, listed directly instead of walking years and months.
    pub(super) fn direct_days(&self, node: &Node) -> Option<Vec<Node>> {
        let (lo, hi) = (self.lo?, self.hi?);
        if (hi - lo).num_days() > DIRECT_DAYS {
            return None;
        }
        let days = lo.iter_days().take_while(|d| *d <= hi);
        Some(
            days.map(|d| Node {
                prefix: format!("{}{:04}/{:02}/{:02}/", node.prefix, d.year(), d.month(), d.day()),
                kind: Kind::Leaf,
                pinned: vec![],
            })
            .collect(),
        )
    }
}

/// `s` as a number if it is exactly `len` ASCII digits (`2024`, `03`).
pub(super) fn number<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Why a folder name found while walking cannot be a path segment, if it cannot.
pub(super) fn unsafe_segment(seg: &str) -> Option<String> {
    if seg.contains('/') {
        return Some("empty path segment".into());
    }
    unsafe_key(seg)
}

pub(super) async fn expand(s3: &S3, plan: &Plan, node: Node) -> Result<Expansion, ListError> {
    let mut out = Expansion::default();
    let mut pinned = node.pinned.clone();
    if let Some(seg) = pinned.pop() {
        if node.kind == Kind::Leaf {
            pinned.push(seg);
            let rest: Vec<String> = pinned.into_iter().rev().collect();
            let leaf = Node { prefix: format!("{}{}/", node.prefix, rest.join("/")), kind: Kind::Leaf, pinned: vec![] };
            out.children.push(leaf);
        } else {
            out.children.extend(plan.child(&node, &seg, pinned));
        }
        return Ok(out);
    }
    match node.kind {
        Kind::Leaf => {
            out.objects = s3.list(&node.prefix, false).await?.objects;
            // A zero-byte `folder/` marker is not an object to write.
            out.objects.retain(|o| !(o.key.ends_with('/') && o.size == 0 && o.undecodable.is_none()));
        }
        Kind::Account => {
            for seg in ["CloudTrail", "CloudTrail-Digest"] {
                out.children.extend(plan.child(&node, seg, vec![]));
            }
        }
        Kind::Region if plan.windowed && plan.direct_days(&node).is_some() => {
            out.children = plan.direct_days(&node).unwrap_or_default();
        }
        _ => {
            let page = s3.list(&node.prefix, true).await?;
            for p in page.prefixes {
                let Some(seg) = p.strip_prefix(&node.prefix).map(|s| s.strip_suffix('/').unwrap_or(s)) else {
                    continue;
                };
                match unsafe_segment(seg) {
                    Some(why) => {
                        out.refused.push(KeyProblem { key: p.clone(), reason: format!("prefix refused: {why}") })
                    }
                    None => out.children.extend(plan.child(&node, seg, vec![])),
                }
            }
        }
    }
    Ok(out)
}

/// List every object the plan selects, generation by generation, `jobs` requests at a time.
pub(super) async fn walk(
    s3: &S3,
    plan: &Plan,
    roots: Vec<Node>,
    jobs: usize,
    bar: &ProgressBar,
) -> Result<(Vec<Listed>, Vec<KeyProblem>), ListError> {
    let mut frontier = roots;
    let mut objects = Vec::new();
    let mut refused = Vec::new();
    while !frontier.is_empty() {
        let mut results = futures::stream::iter(frontier.drain(..).map(|n| expand(s3, plan, n))).buffer_unordered(jobs);
        let mut next = Vec::new();
        while let Some(r) = results.next().await {
            let e = r?;
            next.extend(e.children);
            objects.extend(e.objects);
            refused.extend(e.refused);
            bar.set_message(format!("listing: {} objects", objects.len()));
        }
        drop(results);
        frontier = next;
    }
    objects.sort_by(|a: &Listed, b: &Listed| a.key.cmp(&b.key));
    objects.dedup_by(|a, b| a.key == b.key);
    Ok((objects, refused))
}
