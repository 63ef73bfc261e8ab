//! Did a failed call pass authorization? CloudTrail records a call that failed with its `errorCode`,
//! and least privilege needs to know whether the permission was exercised:
//!
//! - **denied**: an authorization failure (`AccessDenied*`, `*UnauthorizedOperation`,
//!   `VpceAccessDenied`): the permission was missing; the call is `attempted`, never used.
//! - **after authorization**: the request was authorized and then failed on the resource's state
//!   (`NoSuchWebsiteConfiguration`, `TrailNotFoundException`, `EntityAlreadyExists`, `BucketNotEmpty`,
//!   an EC2 `DryRunOperation`, ...): IAM evaluates a request before the service acts on it (IAM User
//!   Guide, "Policy evaluation logic": a request is authorized or denied before the operation runs;
//!   EC2's DryRun documents `DryRunOperation` as "the request would have succeeded"), so the
//!   permission was used, and a policy without it would turn the call into AccessDenied.
//! - **unknown**: failures that may come before authorization: throttling, service errors,
//!   authentication failures (an expired or invalid key is refused before any policy is read), and
//!   `NoSuchBucket` (S3 answers a missing bucket before evaluating a policy). These prove nothing
//!   either way; `unused` says how many there were instead of counting them.
//!
//! The lists are patterns in SQL `LIKE` form so that `used.sql` of the SQL pack applies the same rule
//! (`sql_condition`). A `Client.`/`Server.` prefix (EC2's spelling) is ignored.

use polars::prelude::*;

/// How a failed call relates to authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    Denied,
    AfterAuthorization,
    Unknown,
}

/// Authorization failures.
pub const DENIED: &[&str] = &["AccessDenied%", "%UnauthorizedOperation", "VpceAccessDenied"];

/// Failures that may precede authorization; checked before `AFTER_AUTHORIZATION`.
pub const UNKNOWN: &[&str] = &[
    "%Throttl%",
    "RequestLimitExceeded",
    "TooManyRequests%",
    "SlowDown",
    "ServiceUnavailable%",
    "Internal%",
    "%InternalServerError%",
    "NoSuchBucket",
    "RequestExpired",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken%",
    "UnrecognizedClient%",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "AuthFailure",
];

/// Failures on the state of an authorized request's resource.
pub const AFTER_AUTHORIZATION: &[&str] = &[
    "NoSuch%",
    "%NotFound",
    "%NotFoundException",
    "%NotFoundError",
    "%AlreadyExist%",
    "%NotEmpty",
    "%InUse%",
    "%Conflict%",
    "DeleteConflict",
    "%DryRunOperation",
    "%LimitExceeded%",
    "%IncorrectState%",
    "%InvalidState%",
];

/// `LIKE` with `%` at either end only, as the lists use it.
fn like(code: &str, pattern: &str) -> bool {
    match (pattern.strip_prefix('%'), pattern.strip_suffix('%')) {
        (Some(rest), _) if rest.ends_with('%') => code.contains(&rest[..rest.len() - 1]),
        (Some(rest), _) => code.ends_with(rest),
        (None, Some(rest)) => code.starts_with(rest),
        (None, None) => code == pattern,
    }
}

fn any(code: &str, patterns: &[&str]) -> bool {
    let bare = code.strip_prefix("Client.").or_else(|| code.strip_prefix("Server.")).unwrap_or(code);
    patterns.iter().any(|p| like(code, p) || like(bare, p))
}

/// The class of a non-empty `errorCode`.
pub fn classify(code: &str) -> ErrorClass {
    if any(code, DENIED) {
        ErrorClass::Denied
    } else if any(code, UNKNOWN) {
        ErrorClass::Unknown
    } else if any(code, AFTER_AUTHORIZATION) {
        ErrorClass::AfterAuthorization
    } else {
        ErrorClass::Unknown
    }
}

/// An authorization failure (`classify` gives `Denied`), as an expression over the events frame;
/// null where the code is.
pub fn denied(error_code: Expr) -> Expr {
    DENIED
        .iter()
        .flat_map(|p| [p.to_string(), format!("Client.{p}"), format!("Server.{p}")])
        .map(|p| like_expr(error_code.clone(), &p))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

/// A call that exercised its permission: it succeeded, or failed after authorization (the rule of
/// `classify` as an expression over the events frame).
pub fn exercised(error_code: Expr) -> Expr {
    let matches = |patterns: &[&str]| {
        patterns
            .iter()
            .flat_map(|p| [p.to_string(), format!("Client.{p}"), format!("Server.{p}")])
            .map(|p| like_expr(error_code.clone(), &p))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false))
    };
    let failed = error_code.clone().is_not_null().and(error_code.clone().neq(lit("")));
    let after = matches(AFTER_AUTHORIZATION).and(matches(DENIED).not()).and(matches(UNKNOWN).not());
    failed.clone().not().or(after).fill_null(lit(false))
}

fn like_expr(e: Expr, pattern: &str) -> Expr {
    match (pattern.strip_prefix('%'), pattern.strip_suffix('%')) {
        (Some(rest), _) if rest.ends_with('%') => e.str().contains_literal(lit(rest[..rest.len() - 1].to_string())),
        (Some(rest), _) => e.str().ends_with(lit(rest.to_string())),
        (None, Some(rest)) => e.str().starts_with(lit(rest.to_string())),
        (None, None) => e.eq(lit(pattern.to_string())),
    }
}

/// `exercised` in SQL, over a column named `error_code` (every dialect of the SQL pack has `LIKE`).
pub fn sql_exercised() -> String {
    let list = |patterns: &[&str]| {
        patterns
            .iter()
            .flat_map(|p| [p.to_string(), format!("Client.{p}"), format!("Server.{p}")])
            .map(|p| format!("error_code LIKE '{p}'"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    format!(
        "(error_code IS NULL OR error_code = '' OR (({}) AND NOT ({}) AND NOT ({})))",
        list(AFTER_AUTHORIZATION),
        list(DENIED),
        list(UNKNOWN)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_real_error_codes() {
        use ErrorClass::*;
        for (code, class) in [
            ("AccessDenied", Denied),
            ("AccessDeniedException", Denied),
            ("Client.UnauthorizedOperation", Denied),
            ("NoSuchWebsiteConfiguration", AfterAuthorization),
            ("TrailNotFoundException", AfterAuthorization),
            ("EntityAlreadyExists", AfterAuthorization),
            ("BucketNotEmpty", AfterAuthorization),
            ("Client.DryRunOperation", AfterAuthorization),
            ("Client.InvalidInstanceID.NotFound", AfterAuthorization),
            ("NoSuchBucket", Unknown),
            ("ThrottlingException", Unknown),
            ("Client.RequestLimitExceeded", Unknown),
            ("InvalidClientTokenId", Unknown),
            ("ValidationException", Unknown),
        ] {
            assert_eq!(classify(code), class, "{code}");
        }
    }

    #[test]
    fn the_expression_agrees_with_classify() {
        let codes = [
            None,
            Some(""),
            Some("AccessDenied"),
            Some("NoSuchWebsiteConfiguration"),
            Some("Client.DryRunOperation"),
            Some("NoSuchBucket"),
            Some("ThrottlingException"),
            Some("RequestLimitExceeded"),
            Some("ValidationException"),
            Some("TrailNotFoundException"),
        ];
        let df = df!("error_code" => codes).unwrap();
        let out = df.lazy().select([exercised(col("error_code")).alias("x")]).collect().unwrap();
        let got: Vec<bool> = out.column("x").unwrap().bool().unwrap().iter().map(|b| b.unwrap()).collect();
        let want: Vec<bool> = codes
            .iter()
            .map(|c| match c {
                None | Some("") => true,
                Some(code) => classify(code) == ErrorClass::AfterAuthorization,
            })
            .collect();
        assert_eq!(got, want);
    }
}
