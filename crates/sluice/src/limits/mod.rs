//! Admission against rate limits: token buckets for requests and tokens, the shared pause
//! every worker respects after a 429, adaptive rates (AIMD), and the server's headers.

mod adaptive;
mod admission;
mod bucket;
mod headers;

pub use adaptive::RateController;
pub use admission::{Admission, AdmitDecision, Limits};
pub use bucket::TokenBucket;
pub use headers::{BudgetHeaders, RateHeaders, parse_go_duration, until_rfc3339};
