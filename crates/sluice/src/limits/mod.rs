//! Admission against rate limits: token buckets for requests and tokens, and the shared
//! pause every worker respects after a 429.

mod admission;
mod bucket;

pub use admission::{Admission, AdmitDecision, Limits};
pub use bucket::TokenBucket;
