//! `pull`: download CloudTrail archives from S3 (to be written).
