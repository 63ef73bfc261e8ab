//! The events frame: column names, their types, and the builder that turns `EventRow`s into a Polars
//! `DataFrame`. Types are chosen to be portable in Parquet (UTC millisecond timestamps, strings,
//! booleans), because the store is read by other engines too (issue #7).

use polars::prelude::*;

use crate::error::{PolarsContext, Result};
use crate::ingest::record::EventRow;

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
    strings: Vec<Str>,
    /// Which string columns are filled (the others come out all null): see `with_projection`.
    keep: Vec<bool>,
}

/// The string columns in the order `push` fills them (must match `STRING_COLUMNS`).
const STRING_COLUMNS: [&str; 35] = [
    c::EVENT_VERSION,
    c::EVENT_SOURCE,
    c::EVENT_NAME,
    c::AWS_REGION,
    c::SOURCE_IP,
    c::USER_AGENT,
    c::ERROR_CODE,
    c::ERROR_MESSAGE,
    c::EVENT_TYPE,
    c::EVENT_CATEGORY,
    c::RECIPIENT_ACCOUNT_ID,
    c::EVENT_ID,
    c::REQUEST_ID,
    c::SHARED_EVENT_ID,
    c::VPC_ENDPOINT_ID,
    c::IDENTITY_TYPE,
    c::PRINCIPAL_ID,
    c::ARN,
    c::ACCOUNT_ID,
    c::ACCESS_KEY_ID,
    c::USER_NAME,
    c::INVOKED_BY,
    c::SESSION_ISSUER_TYPE,
    c::SESSION_ISSUER_PRINCIPAL_ID,
    c::SESSION_ISSUER_ARN,
    c::SESSION_ISSUER_USER_NAME,
    c::SOURCE_IDENTITY,
    c::CONSOLE_LOGIN,
    c::MFA_USED,
    c::TLS_VERSION,
    c::REQUEST_PARAMETERS,
    c::RESPONSE_ELEMENTS,
    c::ADDITIONAL_EVENT_DATA,
    c::RESOURCES,
    c::PRINCIPAL,
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

/// The string columns outside `columns`, the identity columns too: what a store's reader need not
/// decode for a question that reads only `columns` (a store holds each event once: nothing to
/// de-duplicate by).
pub fn unread<'a>(columns: &'a [&'a str]) -> impl Iterator<Item = &'static str> + 'a {
    STRING_COLUMNS.iter().chain([&c::SOURCE_FILE]).copied().filter(move |name| !columns.contains(name))
}

impl FrameBuilder {
    /// A builder that fills only the string columns named in `columns` (every column when `None`);
    /// the frame still has the full schema. `scan` needs five columns for its summary, and copying
    /// the others (the JSON blobs above all) is most of the frame's cost.
    pub fn with_projection(columns: Option<&[&str]>) -> Self {
        let mut b = Self::with_capacity(0);
        if let Some(cols) = columns {
            for (k, name) in b.keep.iter_mut().zip(STRING_COLUMNS.iter().chain([&c::SOURCE_FILE])) {
                *k = filled(cols, name);
            }
        }
        b
    }

    pub fn with_capacity(n: usize) -> Self {
        let mut strings: Vec<Str> = STRING_COLUMNS.iter().map(|name| Str::new((*name).into(), n)).collect();
        strings.push(Str::new(c::SOURCE_FILE.into(), n));
        let keep = vec![true; strings.len()];
        FrameBuilder {
            keep,
            len: 0,
            event_time: Vec::with_capacity(n),
            session_created: Vec::with_capacity(n),
            read_only: Vec::with_capacity(n),
            management_event: Vec::with_capacity(n),
            session_mfa: Vec::with_capacity(n),
            strings,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, r: &EventRow<'_>, source_file: &str) {
        self.len += 1;
        self.event_time.push(r.event_time_ms);
        self.session_created.push(r.session_created_ms);
        self.read_only.push(r.read_only);
        self.management_event.push(r.management_event);
        self.session_mfa.push(r.session_mfa);
        let values: [Option<&str>; 35] = [
            r.event_version.as_deref(),
            r.event_source.as_deref(),
            r.event_name.as_deref(),
            r.aws_region.as_deref(),
            r.source_ip.as_deref(),
            r.user_agent.as_deref(),
            r.error_code.as_deref(),
            r.error_message.as_deref(),
            r.event_type.as_deref(),
            r.event_category.as_deref(),
            r.recipient_account_id.as_deref(),
            r.event_id.as_deref(),
            r.request_id.as_deref(),
            r.shared_event_id.as_deref(),
            r.vpc_endpoint_id.as_deref(),
            r.identity_type.as_deref(),
            r.principal_id.as_deref(),
            r.arn.as_deref(),
            r.account_id.as_deref(),
            r.access_key_id.as_deref(),
            r.user_name.as_deref(),
            r.invoked_by.as_deref(),
            r.session_issuer_type.as_deref(),
            r.session_issuer_principal_id.as_deref(),
            r.session_issuer_arn.as_deref(),
            r.session_issuer_user_name.as_deref(),
            r.source_identity.as_deref(),
            r.console_login.as_deref(),
            r.mfa_used.as_deref(),
            r.tls_version.as_deref(),
            r.request_parameters,
            r.response_elements,
            r.additional_event_data,
            r.resources,
            r.principal.as_deref(),
        ];
        for ((b, v), keep) in self.strings.iter_mut().zip(values).zip(&self.keep) {
            if *keep {
                b.append_option(v);
            }
        }
        if self.keep[35] {
            self.strings[35].append_value(source_file);
        }
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
        for ((name, b), keep) in STRING_COLUMNS.iter().chain([&c::SOURCE_FILE]).zip(self.strings).zip(self.keep) {
            let column =
                if keep { b.finish().into_column() } else { Column::full_null((*name).into(), n, &DataType::String) };
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
