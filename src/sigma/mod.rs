//! Sigma detection rules (specification v2) for AWS CloudTrail records: held as `serde_json::Value`,
//! or read in place through [`Event`].
//!
//! - [`load_rules`] turns a YAML file (one or more `---` documents) into detection rules
//!   ([`Rule`]) and correlation rules ([`CorrelationDef`]), or precise [`LoadError`]s.
//! - [`Rule::matches`] tests one event.
//! - [`link`] resolves correlation rules against all loaded rules; [`Correlator`] evaluates them
//!   over base-rule hits in time order.
//!
//! Matching semantics (see the module docs of `pattern` and `event` for details): field names are
//! dotted JSON paths, arrays on the way are searched element by element; objects and arrays are
//! compared as compact JSON with sorted keys; numbers and booleans as their JSON text; matching
//! is case-insensitive unless `|cased`; keywords search every string leaf.

mod condition;
mod correlation;
mod error;
mod event;
mod pattern;
mod rule;

pub use correlation::{
    link, rule_generates, CmpOp, Correlation, CorrelationDef, CorrelationHit, CorrelationType, Correlator,
};
pub use error::{ErrorKind, LinkError, LoadError};
pub use event::{any_string_leaf, leaf_text, sorted_json, value_text, Event, FieldPath, Leaf};
pub use pattern::with_lowercase;
pub use rule::{
    attack_tactics, attack_techniques, load_rules, load_rules_with, Level, LoadOptions, Loaded, Meta, Rule, Status,
};

#[cfg(test)]
mod sigmahq_tests;
