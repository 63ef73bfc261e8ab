//! IAM: the action catalogue, the authorization-details snapshot, identity-policy evaluation, the
//! mapping from CloudTrail events to IAM actions, and which failed calls passed authorization (the
//! unused-permissions question built on them is `query::unused`).

pub mod actions;
pub mod authz;
pub mod catalogue;
pub mod errors;
pub mod policy;
pub mod resources;
pub mod risk;
