//! The events frame: column names, their types, and the builder that turns records' leaves into a
//! Polars `DataFrame`. Types are chosen to be portable in Parquet (UTC millisecond timestamps, strings,
//! booleans), because the store is read by other engines too (issue #7).

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::ingest::record::{self, json_text, text, Leaf, Leaves, Reject};

/// Column names of the events frame, one constant each, snake_case.
pub mod col_name {
    pub const EVENT_TIME: &str = "event_time";
    pub const EVENT_VERSION: &str = "event_version";
    pub const EVENT_SOURCE: &str = "event_source";
    pub const EVENT_NAME: &str = "event_name";
    pub const AWS_REGION: &str = "aws_region";
    pub const SOURCE_IP: &str = "source_ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const ERROR_CODE: &str = "error_code";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const READ_ONLY: &str = "read_only";
    pub const EVENT_TYPE: &str = "event_type";
    pub const EVENT_CATEGORY: &str = "event_category";
    pub const MANAGEMENT_EVENT: &str = "management_event";
    pub const RECIPIENT_ACCOUNT_ID: &str = "recipient_account_id";
    pub const EVENT_ID: &str = "event_id";
    pub const REQUEST_ID: &str = "request_id";
    pub const SHARED_EVENT_ID: &str = "shared_event_id";
    pub const VPC_ENDPOINT_ID: &str = "vpc_endpoint_id";
    pub const IDENTITY_TYPE: &str = "identity_type";
    pub const PRINCIPAL_ID: &str = "principal_id";
    pub const ARN: &str = "arn";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const ACCESS_KEY_ID: &str = "access_key_id";
    pub const USER_NAME: &str = "user_name";
    pub const INVOKED_BY: &str = "invoked_by";
    pub const SESSION_ISSUER_TYPE: &str = "session_issuer_type";
    pub const SESSION_ISSUER_PRINCIPAL_ID: &str = "session_issuer_principal_id";
    pub const SESSION_ISSUER_ARN: &str = "session_issuer_arn";
    pub const SESSION_ISSUER_USER_NAME: &str = "session_issuer_user_name";
    pub const SESSION_MFA: &str = "session_mfa";
    pub const SESSION_CREATED: &str = "session_created";
    pub const SOURCE_IDENTITY: &str = "source_identity";
    pub const CONSOLE_LOGIN: &str = "console_login";
    pub const MFA_USED: &str = "mfa_used";
    pub const TLS_VERSION: &str = "tls_version";
    pub const REQUEST_PARAMETERS: &str = "request_parameters";
    pub const RESPONSE_ELEMENTS: &str = "response_elements";
    pub const ADDITIONAL_EVENT_DATA: &str = "additional_event_data";
    pub const RESOURCES: &str = "resources";
    pub const PRINCIPAL: &str = "principal";
    pub const SOURCE_FILE: &str = "source_file";
}
use col_name as c;

/// CloudTrail's own names (JSON paths in the record) of the columns that hold a record field as it
/// was: what `sql` accepts as aliases and what `hunt` rebuilds the record from. Derived columns
/// (`principal`, `console_login`, `mfa_used`, `source_file`) have none.
pub const CLOUDTRAIL_NAMES: &[(&str, &str)] = &[
    ("eventTime", c::EVENT_TIME),
    ("eventVersion", c::EVENT_VERSION),
    ("eventSource", c::EVENT_SOURCE),
    ("eventName", c::EVENT_NAME),
    ("awsRegion", c::AWS_REGION),
    ("sourceIPAddress", c::SOURCE_IP),
    ("userAgent", c::USER_AGENT),
    ("errorCode", c::ERROR_CODE),
    ("errorMessage", c::ERROR_MESSAGE),
    ("readOnly", c::READ_ONLY),
    ("eventType", c::EVENT_TYPE),
    ("eventCategory", c::EVENT_CATEGORY),
    ("managementEvent", c::MANAGEMENT_EVENT),
    ("recipientAccountId", c::RECIPIENT_ACCOUNT_ID),
    ("eventID", c::EVENT_ID),
    ("requestID", c::REQUEST_ID),
    ("sharedEventID", c::SHARED_EVENT_ID),
    ("vpcEndpointId", c::VPC_ENDPOINT_ID),
    ("userIdentity.type", c::IDENTITY_TYPE),
    ("userIdentity.principalId", c::PRINCIPAL_ID),
    ("userIdentity.arn", c::ARN),
    ("userIdentity.accountId", c::ACCOUNT_ID),
    ("userIdentity.accessKeyId", c::ACCESS_KEY_ID),
    ("userIdentity.userName", c::USER_NAME),
    ("userIdentity.invokedBy", c::INVOKED_BY),
    ("userIdentity.sessionContext.sessionIssuer.type", c::SESSION_ISSUER_TYPE),
    ("userIdentity.sessionContext.sessionIssuer.principalId", c::SESSION_ISSUER_PRINCIPAL_ID),
    ("userIdentity.sessionContext.sessionIssuer.arn", c::SESSION_ISSUER_ARN),
    ("userIdentity.sessionContext.sessionIssuer.userName", c::SESSION_ISSUER_USER_NAME),
    ("userIdentity.sessionContext.attributes.mfaAuthenticated", c::SESSION_MFA),
    ("userIdentity.sessionContext.attributes.creationDate", c::SESSION_CREATED),
    ("userIdentity.sessionContext.sourceIdentity", c::SOURCE_IDENTITY),
    ("tlsDetails.tlsVersion", c::TLS_VERSION),
    ("requestParameters", c::REQUEST_PARAMETERS),
    ("responseElements", c::RESPONSE_ELEMENTS),
    ("additionalEventData", c::ADDITIONAL_EVENT_DATA),
    ("resources", c::RESOURCES),
];

/// The version of the frame's schema as written to the store; bump on any column change.
pub const SCHEMA_VERSION: u32 = 1;

/// Every column in frame order with its type.
pub fn schema() -> Schema {
    let mut s = Schema::default();
    for (name, dtype) in columns() {
        s.with_column(name.into(), dtype);
    }
    s
}

fn time_type() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}

fn columns() -> Vec<(&'static str, DataType)> {
    use DataType::{Boolean as B, String as S};
    vec![
        (c::EVENT_TIME, time_type()),
        (c::EVENT_VERSION, S),
        (c::EVENT_SOURCE, S),
        (c::EVENT_NAME, S),
        (c::AWS_REGION, S),
        (c::SOURCE_IP, S),
        (c::USER_AGENT, S),
        (c::ERROR_CODE, S),
        (c::ERROR_MESSAGE, S),
        (c::READ_ONLY, B),
        (c::EVENT_TYPE, S),
        (c::EVENT_CATEGORY, S),
        (c::MANAGEMENT_EVENT, B),
        (c::RECIPIENT_ACCOUNT_ID, S),
        (c::EVENT_ID, S),
        (c::REQUEST_ID, S),
        (c::SHARED_EVENT_ID, S),
        (c::VPC_ENDPOINT_ID, S),
        (c::IDENTITY_TYPE, S),
        (c::PRINCIPAL_ID, S),
        (c::ARN, S),
        (c::ACCOUNT_ID, S),
        (c::ACCESS_KEY_ID, S),
        (c::USER_NAME, S),
        (c::INVOKED_BY, S),
        (c::SESSION_ISSUER_TYPE, S),
        (c::SESSION_ISSUER_PRINCIPAL_ID, S),
        (c::SESSION_ISSUER_ARN, S),
        (c::SESSION_ISSUER_USER_NAME, S),
        (c::SESSION_MFA, B),
        (c::SESSION_CREATED, time_type()),
        (c::SOURCE_IDENTITY, S),
        (c::CONSOLE_LOGIN, S),
        (c::MFA_USED, S),
        (c::TLS_VERSION, S),
        (c::REQUEST_PARAMETERS, S),
        (c::RESPONSE_ELEMENTS, S),
        (c::ADDITIONAL_EVENT_DATA, S),
        (c::RESOURCES, S),
        (c::PRINCIPAL, S),
        (c::SOURCE_FILE, S),
    ]
}

/// The account an event belongs to for filtering and partitioning: the account whose trail recorded
/// it (`recipientAccountId`), else the caller's account.
pub fn account_expr() -> Expr {
    col(c::RECIPIENT_ACCOUNT_ID).fill_null(col(c::ACCOUNT_ID))
}

type Str = StringChunkedBuilder;

/// Accumulates rows column by column; `finish` makes the frame.
pub struct FrameBuilder {
    len: usize,
    event_time: Vec<i64>,
    session_created: Vec<Option<i64>>,
    read_only: Vec<Option<bool>>,
    management_event: Vec<Option<bool>>,
    session_mfa: Vec<Option<bool>>,
    /// One builder per string column (`STRINGS`), those not filled left empty.
    strings: Vec<Str>,
    /// The string columns filled (index in `STRINGS`, and how): see `with_projection`.
    filled: Vec<(usize, From)>,
}

/// A leaf of a record, picked from its leaves.
type Pick = for<'a, 'r> fn(&'r Leaves<'a>) -> Leaf<'a>;

/// How a string column's value is read from a record's leaves.
#[derive(Clone, Copy)]
enum From {
    /// A leaf as text, strings unescaped (`record::text`).
    Text(Pick),
    /// A leaf as its JSON text (`record::json_text`).
    Json(Pick),
    /// `record::event_id`.
    EventId,
    /// `record::console_login`.
    ConsoleLogin,
    /// `record::principal`.
    Principal,
    /// The name of the file the record came from.
    SourceFile,
}

/// The string columns, in the order of their builders, and how each is filled.
const STRINGS: [(&str, From); 36] = [
    (c::EVENT_VERSION, From::Text(|l| l.event_version)),
    (c::EVENT_SOURCE, From::Text(|l| l.event_source)),
    (c::EVENT_NAME, From::Text(|l| l.event_name)),
    (c::AWS_REGION, From::Text(|l| l.aws_region)),
    (c::SOURCE_IP, From::Text(|l| l.source_ip)),
    (c::USER_AGENT, From::Text(|l| l.user_agent)),
    (c::ERROR_CODE, From::Text(|l| l.error_code)),
    (c::ERROR_MESSAGE, From::Text(|l| l.error_message)),
    (c::EVENT_TYPE, From::Text(|l| l.event_type)),
    (c::EVENT_CATEGORY, From::Text(|l| l.event_category)),
    (c::RECIPIENT_ACCOUNT_ID, From::Text(|l| l.recipient_account_id)),
    (c::EVENT_ID, From::EventId),
    (c::REQUEST_ID, From::Text(|l| l.request_id)),
    (c::SHARED_EVENT_ID, From::Text(|l| l.shared_event_id)),
    (c::VPC_ENDPOINT_ID, From::Text(|l| l.vpc_endpoint_id)),
    (c::IDENTITY_TYPE, From::Text(|l| l.identity_type)),
    (c::PRINCIPAL_ID, From::Text(|l| l.principal_id)),
    (c::ARN, From::Text(|l| l.arn)),
    (c::ACCOUNT_ID, From::Text(|l| l.account_id)),
    (c::ACCESS_KEY_ID, From::Text(|l| l.access_key_id)),
    (c::USER_NAME, From::Text(|l| l.user_name)),
    (c::INVOKED_BY, From::Text(|l| l.invoked_by)),
    (c::SESSION_ISSUER_TYPE, From::Text(|l| l.issuer_type)),
    (c::SESSION_ISSUER_PRINCIPAL_ID, From::Text(|l| l.issuer_principal_id)),
    (c::SESSION_ISSUER_ARN, From::Text(|l| l.issuer_arn)),
    (c::SESSION_ISSUER_USER_NAME, From::Text(|l| l.issuer_user_name)),
    (c::SOURCE_IDENTITY, From::Text(|l| l.source_identity)),
    (c::CONSOLE_LOGIN, From::ConsoleLogin),
    (c::MFA_USED, From::Text(|l| l.mfa_used)),
    (c::TLS_VERSION, From::Text(|l| l.tls_version)),
    (c::REQUEST_PARAMETERS, From::Json(|l| l.request_parameters)),
    (c::RESPONSE_ELEMENTS, From::Json(|l| l.response_elements)),
    (c::ADDITIONAL_EVENT_DATA, From::Json(|l| l.additional_event_data)),
    (c::RESOURCES, From::Json(|l| l.resources)),
    (c::PRINCIPAL, From::Principal),
    (c::SOURCE_FILE, From::SourceFile),
];

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// The columns that identify an event (`pipeline::EventKey`) and its store partition: always filled.
const IDENTITY_COLUMNS: [&str; 4] = [c::EVENT_ID, c::RECIPIENT_ACCOUNT_ID, c::ACCOUNT_ID, c::AWS_REGION];

/// Whether a projection to `columns` fills the string column `name` (the identity columns always).
fn filled(columns: &[&str], name: &str) -> bool {
    columns.contains(&name) || IDENTITY_COLUMNS.contains(&name)
}

/// The names of the string columns (the ones a projection may leave unfilled).
pub fn string_columns() -> impl Iterator<Item = &'static str> {
    STRINGS.iter().map(|(name, _)| *name)
}

/// The string columns outside `columns`, the identity columns too: what a store's reader need not
/// decode for a question that reads only `columns` (a store holds each event once: nothing to
/// de-duplicate by).
pub fn unread<'a>(columns: &'a [&'a str]) -> impl Iterator<Item = &'static str> + 'a {
    STRINGS.iter().map(|(name, _)| *name).filter(move |name| !columns.contains(name))
}

impl FrameBuilder {
    /// A builder that fills only the string columns named in `columns` (every column when `None`);
    /// the frame still has the full schema. `scan` needs five columns for its summary, and copying
    /// the others (the JSON blobs above all) is most of the frame's cost.
    pub fn with_projection(columns: Option<&[&str]>) -> Self {
        let mut b = Self::with_capacity(0);
        if let Some(cols) = columns {
            b.filled.retain(|&(i, _)| filled(cols, STRINGS[i].0));
        }
        b
    }

    pub fn with_capacity(n: usize) -> Self {
        FrameBuilder {
            len: 0,
            event_time: Vec::with_capacity(n),
            session_created: Vec::with_capacity(n),
            read_only: Vec::with_capacity(n),
            management_event: Vec::with_capacity(n),
            session_mfa: Vec::with_capacity(n),
            strings: STRINGS.iter().map(|(name, _)| Str::new((*name).into(), n)).collect(),
            filled: STRINGS.iter().enumerate().map(|(i, &(_, from))| (i, from)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append the row of one record (the string columns not filled skipped), or say why it cannot
    /// be one (nothing appended). Returns whether the row has an eventID.
    pub fn push(&mut self, ev: &Leaves<'_>, source_file: &str) -> Result<bool, Reject> {
        let event_time_ms = record::event_time_ms(ev)?;
        self.len += 1;
        self.event_time.push(event_time_ms);
        self.session_created.push(record::session_created_ms(ev));
        self.read_only.push(record::boolean(ev.read_only));
        self.management_event.push(record::boolean(ev.management_event));
        self.session_mfa.push(record::boolean(ev.mfa_authenticated));
        let event_id = record::event_id(ev);
        let has_id = event_id.is_some();
        for &(i, from) in &self.filled {
            let b = &mut self.strings[i];
            match from {
                From::Text(leaf) => b.append_option(text(leaf(ev)).as_deref()),
                From::Json(leaf) => b.append_option(json_text(leaf(ev))),
                From::EventId => b.append_option(event_id.as_deref()),
                From::ConsoleLogin => b.append_option(record::console_login(ev).as_deref()),
                From::Principal => b.append_option(record::principal(ev).as_deref()),
                From::SourceFile => b.append_value(source_file),
            }
        }
        Ok(has_id)
    }

    /// Build the frame, columns in `schema()` order.
    pub fn finish(self) -> Result<DataFrame> {
        let n = self.len;
        let mut by_name: hashbrown::HashMap<&str, Column> = hashbrown::HashMap::new();
        let time = |name: &str, v: Vec<Option<i64>>| {
            Int64Chunked::from_iter_options(name.into(), v.into_iter())
                .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
                .into_column()
        };
        by_name.insert(
            c::EVENT_TIME,
            Int64Chunked::from_vec(c::EVENT_TIME.into(), self.event_time)
                .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
                .into_column(),
        );
        by_name.insert(c::SESSION_CREATED, time(c::SESSION_CREATED, self.session_created));
        let boolean = |name: &str, v: Vec<Option<bool>>| {
            BooleanChunked::from_iter_options(name.into(), v.into_iter()).into_column()
        };
        by_name.insert(c::READ_ONLY, boolean(c::READ_ONLY, self.read_only));
        by_name.insert(c::MANAGEMENT_EVENT, boolean(c::MANAGEMENT_EVENT, self.management_event));
        by_name.insert(c::SESSION_MFA, boolean(c::SESSION_MFA, self.session_mfa));
        let mut kept = [false; STRINGS.len()];
        for &(i, _) in &self.filled {
            kept[i] = true;
        }
        for ((&(name, _), b), kept) in STRINGS.iter().zip(self.strings).zip(kept) {
            let column =
                if kept { b.finish().into_column() } else { Column::full_null(name.into(), n, &DataType::String) };
            by_name.insert(name, column);
        }
        let cols: Vec<Column> =
            columns().into_iter().map(|(name, _)| by_name.remove(name).expect("every column built")).collect();
        DataFrame::new(n, cols).context("building the events frame")
    }
}

/// An empty events frame with the full schema.
pub fn empty() -> Result<DataFrame> {
    FrameBuilder::default().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with every derived column, two without a usable time, one with an empty eventID.
    const RECORDS: &str = r#"{"Records":[
        {"eventTime":"2023-07-10T12:11:15Z","eventID":"e-1","eventName":"ConsoleLogin","awsRegion":"us-east-1",
         "recipientAccountId":"1","readOnly":false,"userAgent":"a \"quoted\" agent",
         "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/R/s","accountId":"1",
           "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/R"},
             "attributes":{"creationDate":"2023-07-10T12:00:00Z","mfaAuthenticated":"true"}}},
         "responseElements":{"ConsoleLogin":"Success"},"requestParameters":{"a":[1,2]}},
        {"eventName":"NoTime"},
        {"eventTime":"soon"},
        {"eventTime":"2023-07-10T12:11:16Z","eventID":"","errorCode":"AccessDenied","userIdentity":{"accountId":"2"}}
    ]}"#;

    fn build(columns: Option<&[&str]>) -> (DataFrame, Vec<Result<bool, Reject>>) {
        let (_, records) = crate::ingest::parse::parse(RECORDS.as_bytes()).expect("valid JSON");
        let mut builder = FrameBuilder::with_projection(columns);
        let pushed = records.iter().map(|r| builder.push(r, "f.json")).collect();
        (builder.finish().expect("a frame"), pushed)
    }

    fn value(df: &DataFrame, name: &str, row: usize) -> Option<String> {
        df.column(name).unwrap().str().unwrap().get(row).map(str::to_owned)
    }

    #[test]
    fn rows_are_read_from_the_leaves_and_records_without_a_time_add_none() {
        let (df, pushed) = build(None);
        assert_eq!(pushed, [Ok(true), Err(Reject::NoEventTime), Err(Reject::BadEventTime), Ok(false)]);
        assert_eq!(df.height(), 2);
        assert_eq!(df.schema().as_ref(), &schema());
        let want = [
            (c::PRINCIPAL, 0, Some("arn:aws:iam::1:role/R")),
            (c::PRINCIPAL, 1, Some("2")),
            (c::CONSOLE_LOGIN, 0, Some("Success")),
            (c::USER_AGENT, 0, Some(r#"a "quoted" agent"#)),
            (c::REQUEST_PARAMETERS, 0, Some(r#"{"a":[1,2]}"#)),
            (c::EVENT_ID, 0, Some("e-1")),
            (c::EVENT_ID, 1, None),
            (c::ERROR_CODE, 1, Some("AccessDenied")),
            (c::SESSION_ISSUER_TYPE, 0, Some("Role")),
            (c::SOURCE_FILE, 1, Some("f.json")),
        ];
        for (name, row, v) in want {
            assert_eq!(value(&df, name, row).as_deref(), v, "{name} of row {row}");
        }
        let read_only = df.column(c::READ_ONLY).unwrap().bool().unwrap().get(0);
        let mfa = df.column(c::SESSION_MFA).unwrap().bool().unwrap().get(0);
        assert_eq!((read_only, mfa), (Some(false), Some(true)));
        let created = df.column(c::SESSION_CREATED).unwrap().datetime().unwrap().phys.get(0);
        assert_eq!(created, Some(1_688_990_400_000));
    }

    #[test]
    fn a_projection_fills_its_columns_and_the_identity_ones_as_the_whole_frame_does() {
        let (whole, _) = build(None);
        let asked = [c::PRINCIPAL, c::ERROR_CODE, c::SOURCE_FILE];
        let (some, _) = build(Some(&asked));
        assert_eq!(some.schema(), whole.schema());
        for (name, _) in STRINGS {
            let (a, b) = (some.column(name).unwrap(), whole.column(name).unwrap());
            if asked.contains(&name) || IDENTITY_COLUMNS.contains(&name) {
                assert!(a.equals_missing(b), "{name}: {a:?} != {b:?}");
                assert!(a.null_count() < a.len(), "{name} has values in this test");
            } else {
                assert_eq!(a.null_count(), a.len(), "{name} is not asked for");
            }
        }
        for name in [c::EVENT_TIME, c::SESSION_CREATED, c::READ_ONLY, c::MANAGEMENT_EVENT, c::SESSION_MFA] {
            assert!(some.column(name).unwrap().equals_missing(whole.column(name).unwrap()), "{name}");
        }
    }
}
