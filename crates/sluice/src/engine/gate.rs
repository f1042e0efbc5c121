//! The gate stage: what admission charges a request (its tokens, where they are limited,
//! and the most it can cost, under a spend cap), the spend reservation before its first
//! attempt, and the budget's correction after an answer.

use tokio::time::Instant;

use super::Inner;
use crate::cost::CapStop;
use crate::error::{ErrorKind, RequestError};
use crate::estimate::{Estimate, inspect};
use crate::limits::Admission;
use crate::outcome::Success;
use crate::request::{Request, request_model};

/// A request's estimated cost and the admission (by index) it is charged to.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Charge {
    pub estimate: Estimate,
    /// The admission it is charged to.
    pub gate: usize,
    /// The endpoints it may go to (a bit per index in `Inner::routes`).
    pub routes: u64,
    /// The endpoint it went to last.
    pub route: usize,
    /// The most it can cost in dollars, under a spend cap (`None`: its model has no price).
    pub at_most: Option<f64>,
}

impl Inner {
    /// What admission charges a request, and which admission charges it (its model's, if
    /// that has limits of its own; with several endpoints, the one it goes to). Tokens are
    /// estimated only where an admission it may be charged to limits them, since estimating
    /// is the one costly thing on the hot path.
    pub(crate) fn charge(&self, request: &Request) -> Charge {
        let gate = self.gate();
        let index = if gate.models.is_empty() {
            0
        } else {
            request_model(&request.body)
                .and_then(|m| gate.models.get(m.as_ref()).copied())
                .unwrap_or(0)
        };
        let routes = self.routes_for(&request.body);
        let limits_tokens = self
            .admissions_for(index, routes)
            .any(|a| gate.admissions[a].limits_tokens());
        drop(gate);
        let capped = self.spend.is_some();
        // One parse gives both the tokens and, for the cap's price, the model.
        let (estimate, model) = if limits_tokens || capped {
            let found = inspect(request.endpoint, &request.body);
            (found.estimate, found.model)
        } else {
            (Estimate::default(), String::new())
        };
        let at_most = if capped {
            self.prices.lookup(&model).map(|p| p.at_most(estimate))
        } else {
            Some(0.0)
        };
        Charge {
            // Without a token budget the estimate is for the cap alone.
            estimate: if limits_tokens {
                estimate
            } else {
                Estimate::default()
            },
            gate: index,
            routes,
            route: 0,
            at_most,
        }
    }

    /// Whether charging a request counts its tokens (a token budget or a spend cap).
    pub(crate) fn counts_tokens(&self) -> bool {
        self.spend.is_some() || self.gate().admissions.iter().any(Admission::limits_tokens)
    }

    /// Reserves what a request can cost under the spend cap, before its first attempt.
    /// Returns the dollars reserved (nothing without a cap).
    pub(crate) fn reserve(&self, charge: Charge, request: &Request) -> Result<f64, CapStop> {
        let Some(spend) = &self.spend else {
            return Ok(0.0);
        };
        let Some(amount) = charge.at_most else {
            return Err(CapStop::Unpriced {
                model: request_model(&request.body)
                    .unwrap_or_default()
                    .into_owned(),
            });
        };
        let mut spend = spend.lock().unwrap_or_else(|e| e.into_inner());
        spend.try_reserve(amount).map(|()| amount)
    }

    /// A request that reserved `reserved` ended; `cost` is what it cost, if it succeeded
    /// and its model has a price.
    pub(crate) fn settle_spend(&self, reserved: f64, cost: Option<f64>) {
        if let Some(spend) = &self.spend {
            spend
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .settle(reserved, cost.unwrap_or(0.0));
        }
    }

    /// After a success: corrects the token budgets with the usage the server reported
    /// (the prompt it counted, the reserved output it did not use), and lets adaptive
    /// rates grow.
    pub(crate) fn correct(&self, charge: Charge, success: &Success, sent: Instant, now: Instant) {
        let mut gate = self.gate();
        let admission = &mut gate.admissions[charge.gate];
        let estimate = charge.estimate;
        if estimate.prompt > 0 || estimate.reserved_output > 0 {
            admission.correct_tokens(estimate, &success.usage);
        }
        admission.on_success(now, sent);
        gate.consecutive_limited = 0;
    }
}

/// The error for a request that can never fit the token budget.
pub(crate) fn too_large(cost: u64, limit: u64) -> RequestError {
    RequestError::new(
        ErrorKind::TooLarge,
        format!(
            "the request needs about {cost} tokens (prompt plus max_tokens times n), more than the whole \
             budget of {limit} tokens per minute; lower max_tokens or raise the tokens-per-minute budget"
        ),
    )
}
