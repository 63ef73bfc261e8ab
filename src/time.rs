//! Instants as trailscope reads and prints them: UTC milliseconds since the epoch inside, RFC 3339
//! at the edges.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};

/// Parse an RFC 3339 instant, or a bare date (midnight UTC).
pub fn parse_instant(s: &str) -> Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    Err(Error::Filter(format!("{s:?} is not an RFC 3339 time (2024-01-31T00:00:00Z) or a date (2024-01-31)")))
}

pub fn format_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The first and last millisecond `push_utc_ms` writes itself (years 0000 to 9999).
const FIRST_MS: i64 = -62_167_219_200_000;
const LAST_MS: i64 = 253_402_300_799_999;

/// `ms` as `format_ms` writes it (`2024-01-31T12:00:00Z`, `.123` only when there are
/// milliseconds), appended to `out` without allocating: the JSON writers print a time per row.
/// Years outside 0000-9999 go through `format_ms`.
pub fn push_utc_ms(out: &mut Vec<u8>, ms: i64) {
    if !(FIRST_MS..=LAST_MS).contains(&ms) {
        out.extend_from_slice(format_ms(ms).as_bytes());
        return;
    }
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (secs, milli) = (in_day / 1000, in_day % 1000);
    let two = |v: i64| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    let [y0, y1] = two(year / 100);
    let [y2, y3] = two(year % 100);
    let [mo0, mo1] = two(month);
    let [d0, d1] = two(day);
    let [h0, h1] = two(secs / 3600);
    let [mi0, mi1] = two(secs / 60 % 60);
    let [s0, s1] = two(secs % 60);
    out.extend_from_slice(&[y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1]);
    if milli != 0 {
        let [m1, m2] = two(milli % 100);
        out.extend_from_slice(&[b'.', b'0' + (milli / 100) as u8, m1, m2]);
    }
    out.push(b'Z');
}

/// (year, month, day) of a day counted from 1970-01-01 (proleptic Gregorian; the inverse of
/// `ingest::record::days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

pub fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis()
}

/// The zone times are displayed in, in tables (`--tz`, `--localtime`); data formats are always UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Zone {
    /// RFC 3339 with `Z` (the default).
    #[default]
    Utc,
    /// A fixed offset: `2024-07-30T23:31:15+02:00`.
    Fixed(chrono::FixedOffset),
    /// The machine's zone (`TZ`, `/etc/localtime`), its offset at each instant (summer time included).
    Local,
}

/// `ms` as RFC 3339 in `zone`: `Z` in UTC, else the offset (`+02:00`); milliseconds only when not 0.
pub fn format_ms_in(ms: i64, zone: Zone) -> String {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else { return ms.to_string() };
    let opts = chrono::SecondsFormat::AutoSi;
    match zone {
        Zone::Utc => t.to_rfc3339_opts(opts, true),
        Zone::Fixed(off) => t.with_timezone(&off).to_rfc3339_opts(opts, true),
        Zone::Local => t.with_timezone(&chrono::Local).to_rfc3339_opts(opts, true),
    }
}

/// A UTC offset as `--tz` takes it: `+02:00`, `-0530`, `+2`, `Z` or `UTC`; at most 14 hours (the
/// widest in use, Kiribati).
pub fn parse_offset(s: &str) -> std::result::Result<chrono::FixedOffset, String> {
    let bad = || format!("{s:?} is not a UTC offset (expected e.g. +02:00, -05:30, Z)");
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(chrono::FixedOffset::east_opt(0).expect("zero offset"));
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let all_digits = |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m >= 60 || (h == 14 && m > 0) {
        return Err(bad());
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push_utc_ms` writes what `format_ms` (chrono) writes: 366 days from every seventh year or so
    /// from 0000 to 9999, at times with and without milliseconds, the edges of the range and past them.
    #[test]
    fn utc_times_written_as_chrono_writes_them() {
        let check = |ms: i64| {
            let mut out = Vec::new();
            push_utc_ms(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), format_ms(ms), "{ms}");
        };
        let mut day = FIRST_MS.div_euclid(86_400_000);
        while day * 86_400_000 <= LAST_MS {
            let year_start = day;
            for d in 0..366 {
                let ms = (year_start + d) * 86_400_000;
                check(ms);
                check(ms + 45_296_789); // 12:34:56.789
                check(ms + 86_399_000); // 23:59:59
                check(ms + 7);
            }
            day += 7 * 365 + 2;
        }
        for ms in [FIRST_MS, FIRST_MS - 1, FIRST_MS + 1, LAST_MS, LAST_MS + 1, 0, -1, 1, i64::MIN, i64::MAX] {
            check(ms);
        }
    }

    /// `--tz` (#11): offsets in the forms people write them; anything else is refused, never a panic.
    #[test]
    fn offsets_parse_and_times_show_them() {
        let at = |s: &str| parse_offset(s).map(|o| o.local_minus_utc());
        assert_eq!(at("+02:00"), Ok(7200));
        assert_eq!(at("-0530"), Ok(-(5 * 3600 + 30 * 60)));
        assert_eq!(at("+2"), Ok(7200));
        assert_eq!(at("Z"), Ok(0));
        assert_eq!(at("utc"), Ok(0));
        for bad in ["", "+", "2", "+15:00", "+02:60", "+0a:00", "+123:00", "CET", "+02:00:00", "-é"] {
            assert!(parse_offset(bad).is_err(), "{bad:?}");
        }
        let ms = parse_instant("2024-07-30T21:31:15Z").unwrap();
        assert_eq!(format_ms_in(ms, Zone::Utc), "2024-07-30T21:31:15Z");
        assert_eq!(format_ms_in(ms, Zone::Fixed(parse_offset("+02:00").unwrap())), "2024-07-30T23:31:15+02:00");
        assert_eq!(format_ms_in(ms + 5, Zone::Fixed(parse_offset("-05:30").unwrap())), "2024-07-30T16:01:15.005-05:30");
        assert_eq!(format_ms_in(ms, Zone::Fixed(parse_offset("Z").unwrap())), format_ms(ms));
    }
}
