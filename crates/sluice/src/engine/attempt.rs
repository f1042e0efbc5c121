//! The attempt stage: one send through the transport, its answer classified into a
//! success, a failure worth another attempt, or a final failure; secrets scrubbed from
//! everything the server sent back.

use std::time::Duration;

use tokio::time::Instant;

use super::{Charge, Inner};
use crate::describe::{keep_for_record, server_words};
use crate::error::{ErrorKind, RequestError};
use crate::events::Event;
use crate::limits::Stated;
use crate::outcome::{Reported, Success, parse_usage};
use crate::request::{Request, request_model};
use crate::retry::{Verdict, classify, is_overload, retry_after_in_text};

/// How much of an error answer's body its record keeps: enough for any provider's error
/// object, not a whole HTML page or a runaway body.
const ERROR_BODY_KEPT: usize = 64 * 1024;

/// What one attempt came to.
pub(crate) enum Attempt {
    Done(Success),
    Retry(Retryable),
    Fail(RequestError),
}

/// A failed attempt worth another.
pub(crate) struct Retryable {
    pub error: RequestError,
    /// The delay the server asked for, from any header that says it or the error's text.
    pub server_delay: Option<Duration>,
    /// A 429 rate limit (not quota).
    pub rate_limited: bool,
    /// The server says it is overloaded (529, or a 503 that says so).
    pub overloaded: bool,
    /// What the answer's own rate-limit headers state of the budget: spent, remaining,
    /// or nothing.
    pub stated: Stated,
}

impl Retryable {
    pub(crate) fn transient(error: RequestError) -> Self {
        Retryable {
            error,
            server_delay: None,
            rate_limited: false,
            overloaded: false,
            stated: Stated::Silent,
        }
    }
}

impl Inner {
    /// The price of an answer: at the model the server names, else at the request's.
    fn cost_of(&self, request: &Request, reported: &Reported<'_>) -> Option<f64> {
        let price = reported
            .model
            .as_deref()
            .and_then(|m| self.prices.lookup(m))
            .or_else(|| request_model(&request.body).and_then(|m| self.prices.lookup(&m)))?;
        Some(price.cost(reported.usage))
    }

    /// Sends one attempt to the endpoint its charge names and classifies it.
    pub(crate) async fn attempt(&self, request: &Request, attempt: u32, charge: Charge) -> Attempt {
        self.emit(Event::Sent {
            custom_id: &request.custom_id,
            tag: request.tag,
            attempt,
        });
        let route = &self.routes[charge.route];
        route
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Boxed: hyper's future is large, and the attempt task that holds it is moved
        // into place when spawned.
        let reply = match Box::pin(route.transport.send(request)).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!(
                    custom_id = %request.custom_id,
                    attempt,
                    kind = %e.kind,
                    "attempt failed before an answer"
                );
                let mut error = RequestError::new(e.kind, self.redactor.redact_str(&e.message));
                error.status = e.status;
                error.body = e.prefix.map(|b| self.redact(b));
                error.attempts = attempt;
                error.source = e.source;
                return if e.kind.is_retryable() {
                    Attempt::Retry(Retryable::transient(error))
                } else {
                    Attempt::Fail(error)
                };
            }
        };
        // Headers that name no budget teach nothing; the gate's lock, shared with the
        // scheduler's thread, is not taken for them (the budgets' time-based state moves
        // on at the next admission, success or refusal).
        if !reply.rate.is_empty() {
            // What the endpoint has in flight besides this request, and the most it may.
            let in_flight = if self.routes.len() > 1 {
                route.in_flight() as u64
            } else {
                self.in_flight() as u64
            };
            self.gate().admissions[charge.gate].observe(Instant::now(), &reply.rate, in_flight);
        }
        let body = self.redact(reply.body);
        let verdict = classify(reply.status, reply.should_retry, &body);
        tracing::debug!(
            custom_id = %request.custom_id,
            attempt,
            status = reply.status,
            verdict = ?verdict,
            "attempt answered"
        );
        if verdict == Verdict::Success {
            let reported = parse_usage(&body).map(|r| {
                let cost = self.cost_of(request, &r);
                (r.usage, cost)
            });
            return match reported {
                Some((usage, cost)) => Attempt::Done(Success {
                    status: reply.status,
                    request_id: reply.request_id,
                    body,
                    usage,
                    cost,
                }),
                None => {
                    let mut e = RequestError::new(
                        ErrorKind::MalformedResponse,
                        format!("HTTP {} with a body that is not JSON", reply.status),
                    );
                    e.status = Some(reply.status);
                    e.body = Some(keep_for_record(body, ERROR_BODY_KEPT));
                    e.request_id = reply.request_id;
                    e.attempts = attempt;
                    Attempt::Retry(Retryable::transient(e))
                }
            };
        }
        let stated = stated(&reply.rate, charge.estimate);
        let server_delay = reply
            .retry_after
            .or_else(|| retry_after_in_text(&body).filter(|_| verdict != Verdict::Success))
            .or_else(|| {
                // A 429 without a delay (Azure's sometimes): the reset of the budget the
                // headers say is spent.
                let spent =
                    |b: &crate::limits::BudgetHeaders| b.reset.filter(|_| b.remaining == Some(0));
                (reply.status == 429)
                    .then(|| {
                        spent(&reply.rate.requests)
                            .into_iter()
                            .chain(spent(&reply.rate.tokens))
                            .max()
                    })
                    .flatten()
            });
        let overloaded =
            is_overload(reply.status, &body) || (reply.status == 503 && route.overload_503);
        let message = self.describe(
            request,
            &route.transport,
            reply.status,
            reply.location.as_deref(),
            &body,
        );
        let error = move |kind: ErrorKind| {
            let mut e = RequestError::new(kind, message);
            e.status = Some(reply.status);
            e.body = Some(keep_for_record(body, ERROR_BODY_KEPT));
            e.request_id = reply.request_id;
            e.attempts = attempt;
            e
        };
        match verdict {
            Verdict::Retry { kind, rate_limited } => Attempt::Retry(Retryable {
                error: error(kind),
                server_delay,
                rate_limited,
                overloaded,
                stated,
            }),
            Verdict::Fail(kind) => Attempt::Fail(error(kind)),
            Verdict::Success => unreachable!("handled above"),
        }
    }

    /// What an error answer says: the status, the server's own words, and what the status
    /// alone would not tell (the URL that was not found, where a redirect points).
    fn describe(
        &self,
        request: &Request,
        transport: &crate::transport::Transport,
        status: u16,
        location: Option<&str>,
        body: &[u8],
    ) -> String {
        let mut message = format!("HTTP {status}");
        if status == 404 {
            message.push_str(&format!(" from POST {}", transport.url(request.endpoint)));
        }
        if (300..400).contains(&status) {
            message.push_str(&format!(
                " redirect to {}; redirects are not followed (the key must not go to another \
                 host): use the final URL as the base URL",
                location.unwrap_or("an unnamed place")
            ));
        }
        if let Some(words) = server_words(body) {
            message.push_str(": ");
            message.push_str(&words);
        }
        self.redactor.redact_str(&message)
    }
}

/// What a refusal's headers state: a budget spent (a request left, or fewer tokens than
/// the request needs), budget remaining, or nothing at all.
fn stated(rate: &crate::limits::RateHeaders, estimate: crate::estimate::Estimate) -> Stated {
    let budgets = [
        (&rate.requests, 1),
        (&rate.tokens, estimate.cost()),
        (&rate.input_tokens, estimate.prompt),
        (&rate.output_tokens, estimate.reserved_output),
    ];
    let mut said = false;
    for (budget, cost) in budgets {
        if let Some(remaining) = budget.remaining {
            said = true;
            if remaining <= cost.max(1) {
                return Stated::Spent;
            }
        }
    }
    if said {
        Stated::Remains
    } else {
        Stated::Silent
    }
}
