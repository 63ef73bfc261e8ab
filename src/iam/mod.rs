//! IAM: the action catalogue, the authorization-details snapshot, identity-policy evaluation, the
//! mapping from CloudTrail events to IAM actions, and the unused-permissions analysis built on them.

pub mod actions;
pub mod authz;
pub mod catalogue;
pub mod policy;
