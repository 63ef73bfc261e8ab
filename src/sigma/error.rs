//! Errors of loading and linking Sigma rules.

use std::fmt;

/// Why one YAML document of a rule file could not become a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// 1-based index of the YAML document in the file.
    pub document: usize,
    /// The rule's title (or id) when it could be read, to point at the culprit.
    pub rule: Option<String>,
    /// The selection (detection item) the error is in, if any.
    pub selection: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.document)?;
        if let Some(rule) = &self.rule {
            write!(f, " ({rule})")?;
        }
        if let Some(sel) = &self.selection {
            write!(f, ", selection `{sel}`")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for LoadError {}

/// The precise reason a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The YAML text itself is malformed.
    #[error("YAML error{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Yaml {
        /// 1-based line of the error, when the parser reports one.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// The logsource is not `product: aws` + `service: cloudtrail`.
    #[error("not a CloudTrail rule (logsource product `{product}`, service `{service}`)")]
    NotCloudTrail {
        /// The rule's product (empty when absent).
        product: String,
        /// The rule's service (empty when absent).
        service: String,
    },
    /// A required key is absent.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// A key holds a value of the wrong shape or an unknown keyword.
    #[error("invalid `{key}`: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A value modifier this implementation does not know or refuses.
    #[error("unsupported modifier `{0}`")]
    UnsupportedModifier(String),
    /// Modifiers that cannot be combined, or a value that does not fit them.
    #[error("invalid use of modifiers: {0}")]
    Modifier(String),
    /// An `expand` placeholder that the loader was not given.
    #[error("`expand` placeholder `%{0}%` not given")]
    Placeholder(String),
    /// A condition names a selection that does not exist.
    #[error("unknown selection `{0}` in condition")]
    UnknownSelection(String),
    /// A `1 of x*` / `all of x*` pattern that matches no selection.
    #[error("`{0}` in condition matches no selection")]
    EmptyPattern(String),
    /// The condition expression does not parse.
    #[error("condition `{condition}`: {message}")]
    Condition {
        /// The condition text.
        condition: String,
        /// What is wrong with it.
        message: String,
    },
    /// A `|re` value the regex engine refuses (e.g. look-around, back-references, too big).
    #[error("bad regex `{pattern}`: {message}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// The regex engine's message.
        message: String,
    },
    /// A `|cidr` value that is not a network.
    #[error("bad cidr `{0}`")]
    Cidr(String),
    /// A Sigma feature this implementation does not provide.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Why a correlation rule could not be linked to its base rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// A referenced rule name/id is not among the loaded rules.
    #[error("correlation `{correlation}`: unknown rule `{reference}`")]
    UnknownRule {
        /// Title of the correlation.
        correlation: String,
        /// The name or id that was not found.
        reference: String,
    },
    /// A name or id is shared by several loaded rules, so the reference is ambiguous.
    #[error("correlation `{correlation}`: rule reference `{reference}` is ambiguous")]
    Ambiguous {
        /// Title of the correlation.
        correlation: String,
        /// The ambiguous name or id.
        reference: String,
    },
    /// A reference to another correlation rule (chained correlations are not supported).
    #[error("correlation `{correlation}`: references correlation `{reference}`; chained correlations are unsupported")]
    Chained {
        /// Title of the correlation.
        correlation: String,
        /// The referenced correlation.
        reference: String,
    },
}
