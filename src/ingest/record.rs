//! The CloudTrail record as it appears on disk, and how each field becomes a value of the events frame.
//! This and the one-pass parser (`fast.rs`, which looks the same names up) are the places that know
//! CloudTrail's JSON names (see `frame.rs` for the column names).
//!
//! Every leaf is captured as its JSON text ([`Leaves`]), so a field of an unexpected JSON type never
//! fails a whole file: strings are unescaped only when they contain escapes, anything else keeps its
//! JSON text, and the nested blobs (`requestParameters`, ...) are kept byte for byte.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

type Raw<'a> = Option<&'a RawValue>;

/// One event record. Field names are CloudTrail's (see `cloudtrail-event-reference-record-contents`).
#[derive(Deserialize, Default, Debug)]
pub struct RawEvent<'a> {
    #[serde(rename = "eventVersion", borrow)]
    pub event_version: Raw<'a>,
    #[serde(rename = "userIdentity", borrow)]
    pub user_identity: Raw<'a>,
    #[serde(rename = "eventTime", borrow)]
    pub event_time: Raw<'a>,
    #[serde(rename = "eventSource", borrow)]
    pub event_source: Raw<'a>,
    #[serde(rename = "eventName", borrow)]
    pub event_name: Raw<'a>,
    #[serde(rename = "awsRegion", borrow)]
    pub aws_region: Raw<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    pub source_ip: Raw<'a>,
    #[serde(rename = "userAgent", borrow)]
    pub user_agent: Raw<'a>,
    #[serde(rename = "errorCode", borrow)]
    pub error_code: Raw<'a>,
    #[serde(rename = "errorMessage", borrow)]
    pub error_message: Raw<'a>,
    #[serde(rename = "requestParameters", borrow)]
    pub request_parameters: Raw<'a>,
    #[serde(rename = "responseElements", borrow)]
    pub response_elements: Raw<'a>,
    #[serde(rename = "additionalEventData", borrow)]
    pub additional_event_data: Raw<'a>,
    #[serde(rename = "requestID", borrow)]
    pub request_id: Raw<'a>,
    #[serde(rename = "eventID", borrow)]
    pub event_id: Raw<'a>,
    #[serde(rename = "readOnly", borrow)]
    pub read_only: Raw<'a>,
    #[serde(rename = "resources", borrow)]
    pub resources: Raw<'a>,
    #[serde(rename = "eventType", borrow)]
    pub event_type: Raw<'a>,
    #[serde(rename = "managementEvent", borrow)]
    pub management_event: Raw<'a>,
    #[serde(rename = "recipientAccountId", borrow)]
    pub recipient_account_id: Raw<'a>,
    #[serde(rename = "sharedEventID", borrow)]
    pub shared_event_id: Raw<'a>,
    #[serde(rename = "vpcEndpointId", borrow)]
    pub vpc_endpoint_id: Raw<'a>,
    #[serde(rename = "eventCategory", borrow)]
    pub event_category: Raw<'a>,
    #[serde(rename = "tlsDetails", borrow)]
    pub tls_details: Raw<'a>,
    /// Event-history (LookupEvents) exports carry the whole event as a JSON string here.
    #[serde(rename = "CloudTrailEvent", borrow)]
    pub cloudtrail_event: Raw<'a>,
}

/// `userIdentity` (see `cloudtrail-event-reference-user-identity`).
#[derive(Deserialize, Default, Debug)]
pub struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    pub identity_type: Raw<'a>,
    #[serde(rename = "principalId", borrow)]
    pub principal_id: Raw<'a>,
    #[serde(borrow)]
    pub arn: Raw<'a>,
    #[serde(rename = "accountId", borrow)]
    pub account_id: Raw<'a>,
    #[serde(rename = "accessKeyId", borrow)]
    pub access_key_id: Raw<'a>,
    #[serde(rename = "userName", borrow)]
    pub user_name: Raw<'a>,
    #[serde(rename = "invokedBy", borrow)]
    pub invoked_by: Raw<'a>,
    #[serde(rename = "sessionContext", borrow)]
    pub session_context: Option<SessionContext<'a>>,
    /// The IAM Identity Center user a call was made for (`IdentityCenterUser` identities, and
    /// sessions with trusted identity propagation).
    #[serde(rename = "onBehalfOf", borrow)]
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
}

/// `userIdentity.onBehalfOf` (CloudTrail userIdentity reference, "userIdentity for requests made on
/// behalf of an IAM Identity Center user").
#[derive(Deserialize, Default, Debug)]
pub struct OnBehalfOf<'a> {
    #[serde(rename = "userId", borrow)]
    pub user_id: Raw<'a>,
    #[serde(rename = "identityStoreArn", borrow)]
    pub identity_store_arn: Raw<'a>,
}

#[derive(Deserialize, Default, Debug)]
pub struct SessionContext<'a> {
    #[serde(rename = "sessionIssuer", borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow)]
    pub attributes: Option<SessionAttributes<'a>>,
    #[serde(rename = "sourceIdentity", borrow)]
    pub source_identity: Raw<'a>,
}

#[derive(Deserialize, Default, Debug)]
pub struct SessionIssuer<'a> {
    #[serde(rename = "type", borrow)]
    pub issuer_type: Raw<'a>,
    #[serde(rename = "principalId", borrow)]
    pub principal_id: Raw<'a>,
    #[serde(borrow)]
    pub arn: Raw<'a>,
    #[serde(rename = "userName", borrow)]
    pub user_name: Raw<'a>,
}

#[derive(Deserialize, Default, Debug)]
pub struct SessionAttributes<'a> {
    #[serde(rename = "creationDate", borrow)]
    pub creation_date: Raw<'a>,
    #[serde(rename = "mfaAuthenticated", borrow)]
    pub mfa_authenticated: Raw<'a>,
}

/// The few nested fields promoted to columns: `responseElements.ConsoleLogin`,
/// `additionalEventData.MFAUsed`, `tlsDetails.tlsVersion`.
#[derive(Deserialize, Default, Debug)]
struct ResponseElements<'a> {
    #[serde(rename = "ConsoleLogin", borrow)]
    console_login: Raw<'a>,
}

#[derive(Deserialize, Default, Debug)]
struct AdditionalEventData<'a> {
    #[serde(rename = "MFAUsed", borrow)]
    mfa_used: Raw<'a>,
}

#[derive(Deserialize, Default, Debug)]
struct TlsDetails<'a> {
    #[serde(rename = "tlsVersion", borrow)]
    tls_version: Raw<'a>,
}

/// Parse a nested object leniently: anything that is not the expected object gives the default.
fn nested<'a, T: Deserialize<'a> + Default>(raw: Raw<'a>) -> T {
    match raw {
        Some(r) if r.get().starts_with('{') => serde_json::from_str(r.get()).unwrap_or_default(),
        _ => T::default(),
    }
}

/// A leaf of a record as its JSON text (`"abc"` with its quotes, `true`, `{...}`); `None` when the
/// field is absent or JSON `null`.
pub type Leaf<'a> = Option<Json<'a>>;

/// A JSON value's text, and whether it is known to be a string without escapes (which `text` then
/// takes as it is, without looking for a backslash: a parser that has just scanned it knows).
/// Values compare by their text.
#[derive(Debug, Clone, Copy, Eq)]
pub struct Json<'a> {
    pub text: &'a str,
    plain: bool,
}

impl<'a> Json<'a> {
    /// A value whose kind is not known.
    pub fn new(text: &'a str) -> Json<'a> {
        Json { text, plain: false }
    }

    /// A string (quotes included) the caller has checked has no escape.
    pub fn plain_string(text: &'a str) -> Json<'a> {
        debug_assert!(text.len() >= 2 && text.starts_with('"') && text.ends_with('"') && !text.contains('\\'));
        Json { text, plain: true }
    }
}

impl PartialEq for Json<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Every leaf of one record that trailscope reads, the nested ones included, borrowed from the file's
/// text. Two parsers fill it: `fast` in one pass over delivery files, and serde (`Leaves::of`) for any
/// file the fast parser does not take; `tests` and the fuzz target check that both give the same.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Leaves<'a> {
    pub event_version: Leaf<'a>,
    pub event_time: Leaf<'a>,
    pub event_source: Leaf<'a>,
    pub event_name: Leaf<'a>,
    pub aws_region: Leaf<'a>,
    pub source_ip: Leaf<'a>,
    pub user_agent: Leaf<'a>,
    pub error_code: Leaf<'a>,
    pub error_message: Leaf<'a>,
    pub request_parameters: Leaf<'a>,
    pub response_elements: Leaf<'a>,
    pub additional_event_data: Leaf<'a>,
    pub request_id: Leaf<'a>,
    pub event_id: Leaf<'a>,
    pub read_only: Leaf<'a>,
    pub resources: Leaf<'a>,
    pub event_type: Leaf<'a>,
    pub management_event: Leaf<'a>,
    pub recipient_account_id: Leaf<'a>,
    pub shared_event_id: Leaf<'a>,
    pub vpc_endpoint_id: Leaf<'a>,
    pub event_category: Leaf<'a>,
    pub cloudtrail_event: Leaf<'a>,
    /// `userIdentity`'s leaves: all `None` unless it is an object whose nested objects parse.
    pub identity_type: Leaf<'a>,
    pub principal_id: Leaf<'a>,
    pub arn: Leaf<'a>,
    pub account_id: Leaf<'a>,
    pub access_key_id: Leaf<'a>,
    pub user_name: Leaf<'a>,
    pub invoked_by: Leaf<'a>,
    pub issuer_type: Leaf<'a>,
    pub issuer_principal_id: Leaf<'a>,
    pub issuer_arn: Leaf<'a>,
    pub issuer_user_name: Leaf<'a>,
    pub creation_date: Leaf<'a>,
    pub mfa_authenticated: Leaf<'a>,
    pub source_identity: Leaf<'a>,
    pub on_behalf_of_user_id: Leaf<'a>,
    pub on_behalf_of_identity_store_arn: Leaf<'a>,
    /// `responseElements.ConsoleLogin` (read only for ConsoleLogin events), `additionalEventData.MFAUsed`,
    /// `tlsDetails.tlsVersion`.
    pub console_login: Leaf<'a>,
    pub mfa_used: Leaf<'a>,
    pub tls_version: Leaf<'a>,
}

impl<'a> Leaves<'a> {
    /// The leaves of a record serde parsed: the nested objects are parsed leniently (`nested`).
    pub fn of(ev: &RawEvent<'a>) -> Leaves<'a> {
        let get = |raw: Raw<'a>| raw.map(|v| Json::new(v.get()));
        let ui: UserIdentity<'a> = nested(ev.user_identity);
        let ctx = ui.session_context.unwrap_or_default();
        let issuer = ctx.session_issuer.unwrap_or_default();
        let attrs = ctx.attributes.unwrap_or_default();
        let on_behalf_of = ui.on_behalf_of.unwrap_or_default();
        Leaves {
            event_version: get(ev.event_version),
            event_time: get(ev.event_time),
            event_source: get(ev.event_source),
            event_name: get(ev.event_name),
            aws_region: get(ev.aws_region),
            source_ip: get(ev.source_ip),
            user_agent: get(ev.user_agent),
            error_code: get(ev.error_code),
            error_message: get(ev.error_message),
            request_parameters: get(ev.request_parameters),
            response_elements: get(ev.response_elements),
            additional_event_data: get(ev.additional_event_data),
            request_id: get(ev.request_id),
            event_id: get(ev.event_id),
            read_only: get(ev.read_only),
            resources: get(ev.resources),
            event_type: get(ev.event_type),
            management_event: get(ev.management_event),
            recipient_account_id: get(ev.recipient_account_id),
            shared_event_id: get(ev.shared_event_id),
            vpc_endpoint_id: get(ev.vpc_endpoint_id),
            event_category: get(ev.event_category),
            cloudtrail_event: get(ev.cloudtrail_event),
            identity_type: get(ui.identity_type),
            principal_id: get(ui.principal_id),
            arn: get(ui.arn),
            account_id: get(ui.account_id),
            access_key_id: get(ui.access_key_id),
            user_name: get(ui.user_name),
            invoked_by: get(ui.invoked_by),
            issuer_type: get(issuer.issuer_type),
            issuer_principal_id: get(issuer.principal_id),
            issuer_arn: get(issuer.arn),
            issuer_user_name: get(issuer.user_name),
            creation_date: get(attrs.creation_date),
            mfa_authenticated: get(attrs.mfa_authenticated),
            source_identity: get(ctx.source_identity),
            on_behalf_of_user_id: get(on_behalf_of.user_id),
            on_behalf_of_identity_store_arn: get(on_behalf_of.identity_store_arn),
            console_login: get(nested::<ResponseElements>(ev.response_elements).console_login),
            mfa_used: get(nested::<AdditionalEventData>(ev.additional_event_data).mfa_used),
            tls_version: get(nested::<TlsDetails>(ev.tls_details).tls_version),
        }
    }

    /// Does this object look like a CloudTrail record at all (as opposed to some other JSON)?
    pub fn looks_like_cloudtrail(&self) -> bool {
        self.event_version.is_some()
            || self.event_time.is_some()
            || self.event_source.is_some()
            || self.event_name.is_some()
            || self.cloudtrail_event.is_some()
    }
}

/// A JSON leaf as text: strings unescaped (borrowed when they contain no escape), other values as
/// their JSON text. JSON `null` is `None` (serde maps it before we get here).
#[inline]
pub fn text(raw: Leaf<'_>) -> Option<Cow<'_, str>> {
    let raw = raw?;
    if raw.plain {
        return Some(Cow::Borrowed(&raw.text[1..raw.text.len() - 1]));
    }
    text_of_json(raw.text)
}

/// `text` of a leaf that is not a string without escapes: a string with escapes, `null`, or any
/// other value (a boolean, for one).
#[inline(never)]
fn text_of_json(s: &str) -> Option<Cow<'_, str>> {
    if let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
        return serde_json::from_str::<String>(s).ok().map(Cow::Owned);
    }
    if s == "null" {
        return None;
    }
    Some(Cow::Borrowed(s))
}

/// A JSON leaf that should be a boolean: `true`/`false`, or the strings "true"/"false" (any case).
pub fn boolean(raw: Leaf<'_>) -> Option<bool> {
    // JSON's own booleans, CloudTrail's spelling, first.
    match raw?.text {
        "true" => return Some(true),
        "false" => return Some(false),
        _ => {}
    }
    let t = text(raw)?;
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A JSON blob kept verbatim (objects, arrays, or scalars), `None` for null/absent.
pub fn json_text(raw: Leaf<'_>) -> Option<&str> {
    raw.map(|v| v.text).filter(|s| *s != "null")
}

/// Milliseconds since the Unix epoch for an RFC 3339 timestamp. CloudTrail writes
/// `YYYY-MM-DDTHH:MM:SSZ`; that shape takes a fast path, anything else goes through chrono
/// (fractions, offsets, and the `2022-02-08 09:23:37+11:00` form of Event-history exports).
pub fn parse_time_ms(s: &str) -> Option<i64> {
    if let Ok(b) = <&[u8; 20]>::try_from(s.as_bytes()) {
        if b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z' {
            // Every digit checked at once: a byte that is not one is 10 or more past '0'.
            let digit = |i: usize| u32::from(b[i].wrapping_sub(b'0'));
            const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
            let mut largest = 0;
            for i in DIGITS {
                largest = largest.max(digit(i));
            }
            if largest > 9 {
                return None;
            }
            let two = |i: usize| digit(i) * 10 + digit(i + 1);
            let y = two(0) * 100 + two(2);
            let (mo, d, h, mi, se) = (two(5), two(8), two(11), two(14), two(17));
            let days = days_from_civil(y as i64, mo, d)?;
            if h > 23 || mi > 59 || se > 60 {
                return None;
            }
            return in_rfc3339_range(((days * 24 + h as i64) * 60 + mi as i64) * 60_000 + se as i64 * 1000);
        }
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
        .ok()?;
    in_rfc3339_range(parsed.timestamp_millis())
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`, `None` for a day not in its month
/// (Howard Hinnant's `days_from_civil`, with years counted from March). chrono's `NaiveDate` did the
/// same at 1% of a scan.
#[inline(always)]
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m as i64 + 9) % 12) + 2) / 5 + d as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z: the instants RFC 3339 can print. A leap second
/// or an offset can carry a time past them (`9999-12-31T23:59:60Z` is +10000-01-01), and such a
/// record is rejected as having a bad eventTime (#13).
fn in_rfc3339_range(ms: i64) -> Option<i64> {
    const FIRST: i64 = -62_167_219_200_000;
    const LAST: i64 = 253_402_300_799_999;
    (FIRST..=LAST).contains(&ms).then_some(ms)
}

/// Why a record was not turned into a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    NoEventTime,
    BadEventTime,
    BadEmbeddedEvent,
}

impl Reject {
    pub fn reason(self) -> &'static str {
        match self {
            Reject::NoEventTime => "record without eventTime",
            Reject::BadEventTime => "record with an eventTime that is not RFC 3339",
            Reject::BadEmbeddedEvent => "Event-history record whose CloudTrailEvent is not a JSON event",
        }
    }
}

/// The record's eventTime in milliseconds since the Unix epoch, or why it has none usable (the one
/// reason a record is not turned into a row).
pub fn event_time_ms(ev: &Leaves<'_>) -> Result<i64, Reject> {
    let time = text(ev.event_time).ok_or(Reject::NoEventTime)?;
    parse_time_ms(&time).ok_or(Reject::BadEventTime)
}

/// The record's eventID; an empty one is none.
pub fn event_id<'a>(ev: &Leaves<'a>) -> Option<Cow<'a, str>> {
    text(ev.event_id).filter(|s| !s.is_empty())
}

/// `responseElements.ConsoleLogin`, read for ConsoleLogin events only.
pub fn console_login<'a>(ev: &Leaves<'a>) -> Option<Cow<'a, str>> {
    if text(ev.event_name).as_deref() == Some("ConsoleLogin") {
        text(ev.console_login)
    } else {
        None
    }
}

/// The session's creation time (`sessionContext.attributes.creationDate`) in milliseconds.
pub fn session_created_ms(ev: &Leaves<'_>) -> Option<i64> {
    text(ev.creation_date).and_then(|t| parse_time_ms(&t))
}

/// The stable identity whose permissions were used (issue #2):
/// AssumedRole/FederatedUser -> the session issuer's ARN (else `arn`); AWSService -> `invokedBy`;
/// IdentityCenterUser -> the Identity Center user (`onBehalfOf.userId`, as an Identity Store user
/// ARN); otherwise `arn`, else `principalId`, else `accountId`. Records with no `type` but an
/// `invokedBy` (service events such as those in the Invictus IR data) are the service's too.
pub fn principal<'a>(ev: &Leaves<'a>) -> Option<Cow<'a, str>> {
    let pick = |v: Leaf<'a>| text(v).filter(|s| !s.is_empty());
    let otherwise = || pick(ev.arn).or_else(|| pick(ev.principal_id)).or_else(|| pick(ev.account_id));
    match text(ev.identity_type).as_deref() {
        Some("AssumedRole") | Some("FederatedUser") => pick(ev.issuer_arn).or_else(|| pick(ev.arn)),
        Some("AWSService") => pick(ev.invoked_by),
        Some("IdentityCenterUser") => identity_center_user(ev).or_else(otherwise),
        None => pick(ev.invoked_by).or_else(otherwise),
        _ => otherwise(),
    }
}

/// An IAM Identity Center user as the Service Authorization Reference spells an Identity Store
/// user's ARN: `arn:PARTITION:identitystore:::user/USER_ID` (the partition from `identityStoreArn`).
fn identity_center_user<'a>(ev: &Leaves<'a>) -> Option<Cow<'a, str>> {
    let user_id = text(ev.on_behalf_of_user_id).filter(|u| !u.is_empty())?;
    let store = text(ev.on_behalf_of_identity_store_arn);
    let partition = store.as_deref().and_then(|s| s.split(':').nth(1)).filter(|p| !p.is_empty()).unwrap_or("aws");
    Some(Cow::Owned(format!("arn:{partition}:identitystore:::user/{user_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves_of(json: &str) -> Leaves<'_> {
        let ev: RawEvent = serde_json::from_str(json).unwrap();
        Leaves::of(&ev)
    }

    fn principal_of(json: &str) -> Option<String> {
        principal(&leaves_of(json)).map(Cow::into_owned)
    }

    #[test]
    fn time_fast_path_agrees_with_chrono() {
        for s in ["2023-07-10T12:11:15Z", "1970-01-01T00:00:00Z", "2024-02-29T23:59:59Z"] {
            let want = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(parse_time_ms(s), Some(want), "{s}");
        }
        assert_eq!(parse_time_ms("2022-02-08 09:23:37+11:00"), parse_time_ms("2022-02-07T22:23:37Z"));
        assert_eq!(parse_time_ms("2023-07-10T12:11:15.250Z"), Some(1_688_991_075_250));
        assert_eq!(parse_time_ms("2023-13-10T12:11:15Z"), None);
        assert_eq!(parse_time_ms("yesterday"), None);
        // Any digit of CloudTrail's shape replaced by a byte that is not one: no time. The bytes
        // around '0'..='9' catch a check done by subtraction alone.
        let good = "2023-07-10T12:11:15Z";
        for at in (0..20).filter(|&i| good.as_bytes()[i].is_ascii_digit()) {
            for bad in ["/", ":", "a", " ", "\u{e9}"] {
                let mut s = good.to_string();
                s.replace_range(at..at + 1, bad);
                assert_eq!(parse_time_ms(&s), None, "{s}");
            }
        }
        // Every field at its limits, as chrono reads them.
        for s in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2100-02-28T23:59:59Z", "2000-02-29T00:00:00Z"] {
            let want = chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(parse_time_ms(s), Some(want), "{s}");
        }
        for s in ["2100-02-29T00:00:00Z", "2023-07-10T24:00:00Z", "2023-07-10T23:60:00Z", "2023-07-10T23:59:61Z"] {
            assert_eq!(parse_time_ms(s), None, "{s}");
        }
    }

    #[test]
    fn days_are_counted_as_chrono_counts_them() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for y in (0..=9999).step_by(7).chain([1600, 1900, 2000, 2100, 2024]) {
            for m in 0..=13 {
                for d in 0..=32 {
                    let want = chrono::NaiveDate::from_ymd_opt(y as i32, m, d).map(|date| (date - epoch).num_days());
                    assert_eq!(days_from_civil(y, m, d), want, "{y}-{m}-{d}");
                }
            }
        }
    }

    #[test]
    fn booleans_are_json_booleans_or_their_strings() {
        let leaf = |text| Some(Json::new(text));
        assert_eq!(boolean(leaf("true")), Some(true));
        assert_eq!(boolean(leaf("false")), Some(false));
        assert_eq!(boolean(leaf(r#""TRUE""#)), Some(true));
        assert_eq!(boolean(leaf(r#""False""#)), Some(false));
        assert_eq!(boolean(leaf(r#""yes""#)), None);
        assert_eq!(boolean(leaf("1")), None);
        assert_eq!(boolean(None), None);
    }

    #[test]
    fn principal_rules() {
        let assumed = r#"{"eventTime":"2023-07-10T12:11:15Z","userIdentity":{"type":"AssumedRole",
            "arn":"arn:aws:sts::1:assumed-role/R/s","sessionContext":{"sessionIssuer":{"type":"Role",
            "arn":"arn:aws:iam::1:role/R"},"attributes":{"mfaAuthenticated":"true"}}}}"#;
        assert_eq!(principal_of(assumed).as_deref(), Some("arn:aws:iam::1:role/R"));
        assert_eq!(boolean(leaves_of(assumed).mfa_authenticated), Some(true));
        let service = r#"{"eventTime":"2023-07-10T12:11:15Z","userIdentity":{"type":"AWSService",
            "invokedBy":"cloudtrail.amazonaws.com"}}"#;
        assert_eq!(principal_of(service).as_deref(), Some("cloudtrail.amazonaws.com"));
        let untyped = r#"{"eventTime":"2023-07-10T12:11:15Z","userIdentity":{"accountId":"1"}}"#;
        assert_eq!(principal_of(untyped).as_deref(), Some("1"));
        let root = r#"{"eventTime":"2023-07-10T12:11:15Z","userIdentity":{"type":"Root",
            "principalId":"1","arn":"arn:aws:iam::1:root","accountId":"1"}}"#;
        assert_eq!(principal_of(root).as_deref(), Some("arn:aws:iam::1:root"));
        let ic = r#"{"eventTime":"2025-03-03T12:00:00Z","userIdentity":{"type":"IdentityCenterUser",
            "accountId":"1","onBehalfOf":{"userId":"u-1",
            "identityStoreArn":"arn:aws-cn:identitystore::1:identitystore/d-1"}}}"#;
        assert_eq!(principal_of(ic).as_deref(), Some("arn:aws-cn:identitystore:::user/u-1"));
        let ic_without = r#"{"eventTime":"2025-03-03T12:00:00Z","userIdentity":{"type":"IdentityCenterUser",
            "accountId":"1"}}"#;
        assert_eq!(principal_of(ic_without).as_deref(), Some("1"));
    }

    #[test]
    fn lenient_leaves_and_promoted_fields() {
        let j = r#"{"eventTime":"2023-07-10T12:11:15Z","eventName":"ConsoleLogin","readOnly":"false",
            "userAgent":"a \"quoted\" agent","responseElements":{"ConsoleLogin":"Success"},
            "additionalEventData":{"MFAUsed":"No"},"eventID":"","userIdentity":"not an object",
            "requestParameters":{"a":[1,2]}}"#;
        let l = leaves_of(j);
        assert_eq!(boolean(l.read_only), Some(false));
        assert_eq!(text(l.user_agent).as_deref(), Some("a \"quoted\" agent"));
        assert_eq!(console_login(&l).as_deref(), Some("Success"));
        assert_eq!(text(l.mfa_used).as_deref(), Some("No"));
        assert_eq!(event_id(&l), None);
        assert_eq!(text(l.identity_type), None);
        assert_eq!(json_text(l.request_parameters), Some(r#"{"a":[1,2]}"#));
        // ConsoleLogin's outcome is read for ConsoleLogin events only.
        let other = j.replace("\"eventName\":\"ConsoleLogin\"", "\"eventName\":\"GetUser\"");
        assert_eq!(console_login(&leaves_of(&other)), None);
    }

    #[test]
    fn rejects_records_without_usable_time() {
        assert_eq!(event_time_ms(&leaves_of(r#"{"eventName":"X"}"#)).err(), Some(Reject::NoEventTime));
        assert_eq!(event_time_ms(&leaves_of(r#"{"eventTime":"soon"}"#)).err(), Some(Reject::BadEventTime));
        // Past what RFC 3339 can print (#13): rejected, not printed as +10000-01-01T00:00:00Z.
        assert_eq!(
            event_time_ms(&leaves_of(r#"{"eventTime":"9999-12-31T23:59:60Z"}"#)).err(),
            Some(Reject::BadEventTime)
        );
        assert_eq!(
            event_time_ms(&leaves_of(r#"{"eventTime":"9999-12-31T23:59:59-01:00"}"#)).err(),
            Some(Reject::BadEventTime)
        );
        assert!(event_time_ms(&leaves_of(r#"{"eventTime":"9999-12-31T23:59:59Z"}"#)).is_ok());
    }
}
