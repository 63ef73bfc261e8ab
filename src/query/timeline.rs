//! `timeline`: event rows in time order with the pivots investigators use (principal, access key,
//! source IP or CIDR, event name glob, event source, errors only, read-only or writes only), and the
//! session pivot: from a temporary key (ASIA...) back to the STS call that issued it (and, when that
//! call was itself made with a temporary key, further back), and forward to everything it did.

use crate::query::Run;
use std::net::IpAddr;

use polars::prelude::*;

use super::{ascending, is_error, matches};
use crate::error::{Error, PolarsContext, Result};
use crate::ingest::frame::col_name as c;

/// Columns of a timeline row.
pub const COLUMNS: [&str; 16] = [
    c::EVENT_TIME,
    c::EVENT_ID,
    c::RECIPIENT_ACCOUNT_ID,
    c::PRINCIPAL,
    c::IDENTITY_TYPE,
    c::USER_NAME,
    c::ACCESS_KEY_ID,
    c::SOURCE_IP,
    c::AWS_REGION,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::READ_ONLY,
    c::ERROR_CODE,
    c::ERROR_MESSAGE,
    c::USER_AGENT,
    c::REQUEST_PARAMETERS,
];

/// The columns a timeline without the session pivot reads: its rows' and its pivots' (`selection`:
/// `--principal` matches the principal's other names too). From raw files the others are left
/// unfilled: the JSON blobs a timeline does not list are most of what it would otherwise hold or
/// spill to put the events in time order.
pub const READ: [&str; 19] = [
    COLUMNS[0],
    COLUMNS[1],
    COLUMNS[2],
    COLUMNS[3],
    COLUMNS[4],
    COLUMNS[5],
    COLUMNS[6],
    COLUMNS[7],
    COLUMNS[8],
    COLUMNS[9],
    COLUMNS[10],
    COLUMNS[11],
    COLUMNS[12],
    COLUMNS[13],
    COLUMNS[14],
    COLUMNS[15],
    c::ARN,
    c::SESSION_ISSUER_USER_NAME,
    c::PRINCIPAL_ID,
];

/// STS calls that hand out temporary credentials (their responseElements carry the new key).
const ISSUING_CALLS: [&str; 6] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
];

/// How far back a session pivot follows keys issued with other temporary keys (role chaining).
const MAX_CHAIN: usize = 10;

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Usage(format!("{s:?} is not an IP address or CIDR block"));
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(*i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(*i) & mask
            }
            _ => false,
        }
    }
}

/// The pivots of a timeline.
#[derive(Debug, Default, Clone)]
pub struct Pivots {
    pub principals: Vec<String>,
    pub access_keys: Vec<String>,
    pub source_ips: Vec<IpNet>,
    pub event_names: Vec<String>,
    pub event_sources: Vec<String>,
    pub errors_only: bool,
    pub read_only: bool,
    pub writes_only: bool,
}

fn any(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|a, b| a.or(b))
}

/// Whether each row's source IP falls in any of `nets`. CloudTrail's sourceIPAddress is sometimes a
/// service name (`ec2.amazonaws.com`): those never match, nor does a null. Row by row, so that the
/// pivot can select the rows as a large input is read (it listed the matching addresses of all
/// the events first, and so spilled every row).
fn in_networks(nets: &[IpNet]) -> Expr {
    let nets = nets.to_vec();
    col(c::SOURCE_IP).map(
        move |column| {
            let ips = column.str()?;
            let inside = |text: &str| text.parse::<IpAddr>().is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip)));
            let out: BooleanChunked = ips.iter().map(|v| Some(v.is_some_and(inside))).collect();
            Ok(out.with_name(column.name().clone()).into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::Boolean)),
    )
}

/// Events matching every given pivot (each pivot matches any of its values).
pub fn filtered(ev: LazyFrame, p: &Pivots) -> Result<LazyFrame> {
    Ok(match selection(p) {
        Some(e) => ev.filter(e),
        None => ev,
    })
}

/// The condition of `filtered`, `None` when no pivot is given.
pub fn selection(p: &Pivots) -> Option<Expr> {
    let mut conds: Vec<Expr> = Vec::new();
    if let Some(e) = super::principal_filter(&p.principals) {
        conds.push(e);
    }
    if let Some(e) = any(p.access_keys.iter().map(|k| matches(c::ACCESS_KEY_ID, k)).collect()) {
        conds.push(e);
    }
    if let Some(e) = any(p.event_names.iter().map(|k| matches(c::EVENT_NAME, k)).collect()) {
        conds.push(e);
    }
    if let Some(e) = any(p.event_sources.iter().map(|k| matches(c::EVENT_SOURCE, k)).collect()) {
        conds.push(e);
    }
    if p.errors_only {
        conds.push(is_error());
    }
    if p.read_only {
        conds.push(col(c::READ_ONLY).eq(lit(true)).fill_null(lit(false)));
    }
    if p.writes_only {
        conds.push(col(c::READ_ONLY).eq(lit(false)).fill_null(lit(false)));
    }
    if !p.source_ips.is_empty() {
        conds.push(in_networks(&p.source_ips));
    }
    conds.into_iter().reduce(|a, b| a.and(b))
}

/// The columns the session pivot reads: `READ` and the responses it follows the keys through. It
/// takes the events in any order (it selects the chain's rows and sorts those).
pub const SESSION_READ: [&str; 20] = [
    READ[0],
    READ[1],
    READ[2],
    READ[3],
    READ[4],
    READ[5],
    READ[6],
    READ[7],
    READ[8],
    READ[9],
    READ[10],
    READ[11],
    READ[12],
    READ[13],
    READ[14],
    READ[15],
    READ[16],
    READ[17],
    READ[18],
    c::RESPONSE_ELEMENTS,
];

/// The timeline rows of the events (selected by `selection`, see `Dataset::time_ordered`).
/// `sorted`: the events come in time order already (see `Dataset::sorted`).
pub fn rows(ev: LazyFrame, sorted: bool) -> LazyFrame {
    super::in_time_order(ev.select(COLUMNS.iter().map(|n| col(*n)).collect::<Vec<_>>()), sorted)
}

/// The session pivot for temporary key `key`: a `pivot` column says whether a row issued a key in the
/// chain (`issued ASIA...`) or was made with `key` (`used`).
///
/// Each part scans `ev` on its own: with `ev.cache()` shared by the parts, the streaming engine
/// buffered it for the parts it ran later (a 10 M-event pivot peaked at 0.86-0.89 GB, 0.60 without).
pub fn session(ev: LazyFrame, key: &str) -> Result<LazyFrame> {
    let mut parts = vec![ev
        .clone()
        .filter(col(c::ACCESS_KEY_ID).eq(lit(key)).fill_null(lit(false)))
        .with_column(lit("used").alias("pivot"))];
    let issuing = any(ISSUING_CALLS.iter().map(|n| col(c::EVENT_NAME).eq(lit(*n))).collect()).expect("calls");
    let mut current = key.to_string();
    let mut seen = vec![current.clone()];
    for _ in 0..MAX_CHAIN {
        let issuer = ev
            .clone()
            .filter(
                issuing
                    .clone()
                    .and(col(c::RESPONSE_ELEMENTS).str().contains_literal(lit(format!("\"{current}\""))))
                    .fill_null(lit(false)),
            )
            .with_column(lit(format!("issued {current}")).alias("pivot"));
        let found = issuer.clone().run().context("following the session pivot")?;
        if found.height() == 0 {
            break;
        }
        parts.push(issuer);
        // Follow the issuing call's own key if it was temporary too.
        let keys = found.column(c::ACCESS_KEY_ID).context("access_key_id")?.str().context("key")?.clone();
        let next = keys.iter().flatten().find(|k| k.starts_with("ASIA") && !seen.iter().any(|s| s == k));
        match next {
            Some(k) => {
                current = k.to_string();
                seen.push(current.clone());
            }
            None => break,
        }
    }
    let mut cols: Vec<Expr> = vec![col("pivot")];
    cols.extend(COLUMNS.iter().map(|n| col(*n)));
    let all = concat(parts, UnionArgs::default()).context("session pivot")?;
    Ok(all.select(cols).sort([c::EVENT_TIME, c::EVENT_ID], ascending(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline read with `READ` has every column its rows list and its pivots match.
    #[test]
    fn read_holds_the_rows_and_the_pivots_columns() {
        let needed = COLUMNS.iter().chain(&super::super::PRINCIPAL_FIELDS);
        let missing: Vec<&&str> = needed.filter(|n| !READ.contains(n)).collect();
        assert!(missing.is_empty(), "{missing:?}");
    }

    /// The session pivot plans over events with only `SESSION_READ`'s columns (a column it reads
    /// beyond them would fail to resolve here).
    #[test]
    fn session_read_holds_the_session_pivots_columns() {
        let ev = crate::ingest::frame::empty().unwrap().lazy().select(SESSION_READ.map(col));
        let pivot = session(ev, "ASIAEXAMPLE").expect("planning the pivot");
        assert_eq!(pivot.collect().expect("no rows").height(), 0);
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(&"10.1.200.3".parse().unwrap()));
        assert!(!net.contains(&"10.2.0.1".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(&"192.0.2.7".parse().unwrap()));
        assert!(!one.contains(&"192.0.2.8".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"8.8.8.8".parse().unwrap()));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(&"2001:db8::1".parse().unwrap()));
        assert!(!v6.contains(&"10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("ec2.amazonaws.com".parse::<IpNet>().is_err());
    }
}
