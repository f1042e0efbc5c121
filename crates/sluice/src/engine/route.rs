//! Where a request goes: the one endpoint of a client, or, with several
//! ([`crate::fleet`]), the endpoint that serves its model with the most free capacity
//! among those whose budgets admit it now; and what an answer says about the endpoint's
//! health.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::attempt::{Attempt, Retryable};
use super::{AdaptiveConcurrency, Charge, Inner, lock};
use crate::binding::Binding;
use crate::builder::Concurrency;
use crate::fleet::EndpointStats;
use crate::fleet::health::{Health, is_endpoint_failure, worth_another_endpoint};
use crate::limits::AdmitDecision;
use crate::request::request_model;
use crate::transport::Transport;

/// One endpoint requests can go to.
pub(crate) struct Route {
    pub name: String,
    pub transport: Transport,
    /// The models it serves; empty: every model.
    pub models: Vec<String>,
    /// Its admission in the gate.
    pub gate: usize,
    /// Its own requests in flight (several endpoints only).
    pub permits: Arc<Semaphore>,
    /// The most permits there can be.
    pub concurrency: usize,
    /// When its concurrency is found from latency rather than fixed.
    pub adaptive: Option<Mutex<AdaptiveConcurrency>>,
    pub weight: f64,
    /// Its bare 503s mean overload (Together, Fireworks).
    pub overload_503: bool,
    pub health: Mutex<Health>,
    pub sent: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

impl Route {
    /// An endpoint with its transport, its admission's index, its concurrency, its weight
    /// and whether its 503s mean overload.
    pub(crate) fn new(
        name: String,
        transport: Transport,
        models: Vec<String>,
        gate: usize,
        concurrency: Concurrency,
        weight: f64,
        overload_503: bool,
    ) -> Self {
        let most = concurrency.most().get();
        let permits = Semaphore::new(most);
        let adaptive = matches!(concurrency, Concurrency::Auto { .. })
            .then(|| Mutex::new(AdaptiveConcurrency::start(most, &permits)));
        Route {
            name,
            transport,
            models,
            gate,
            permits: Arc::new(permits),
            concurrency: most,
            adaptive,
            weight,
            overload_503,
            health: Mutex::new(Health::default()),
            sent: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        lock(&self.health)
    }

    /// Permits granted now: all of them, or what its controller grants.
    fn granted(&self) -> usize {
        self.adaptive
            .as_ref()
            .map_or(self.concurrency, |a| lock(a).current)
    }

    /// Its requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.granted()
            .saturating_sub(self.permits.available_permits())
    }

    /// Free capacity, scaled by the weight.
    fn room(&self) -> f64 {
        self.weight * self.permits.available_permits() as f64 / self.granted().max(1) as f64
    }

    fn stats(&self, now: Instant) -> EndpointStats {
        let health = self.health();
        EndpointStats {
            name: self.name.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            ejections: health.ejections,
            ejected: !health.available(now),
            concurrency: self.granted(),
        }
    }
}

/// What the gate says to the request at the head of the queue.
pub(crate) enum Admit {
    /// Admitted, at the endpoint now in its charge (holding that endpoint's permit, with
    /// several).
    Now(Option<OwnedSemaphorePermit>),
    /// Not before this instant, waiting on this.
    Wait(Instant, Binding),
    /// Every endpoint that could take it is busy: look again when an attempt ends.
    Busy,
    /// It can never fit the token budget of this many a minute.
    Never { limit: u64 },
    /// No endpoint serves its model.
    NoRoute,
}

impl Inner {
    /// The endpoints a request with this body may go to, as a set of indexes: every one when
    /// there is one endpoint (the body is not read), else those serving its model.
    pub(crate) fn routes_for(&self, body: &[u8]) -> u64 {
        if self.routes.len() == 1 {
            return 1;
        }
        let model = request_model(body);
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.models.is_empty()
                    || model
                        .as_deref()
                        .is_some_and(|m| r.models.iter().any(|s| s == m))
            })
            .fold(0, |set, (i, _)| set | (1 << i))
    }

    /// The admissions a request may be charged to: its own with one endpoint, those of the
    /// endpoints in `routes` with several.
    pub(crate) fn admissions_for(
        &self,
        gate: usize,
        routes: u64,
    ) -> impl Iterator<Item = usize> + '_ {
        let several = self.routes.len() > 1;
        let own = (!several).then_some(gate);
        let endpoints = self
            .routes
            .iter()
            .enumerate()
            .filter(move |(i, _)| several && routes & (1 << i) != 0)
            .map(|(_, r)| r.gate);
        own.into_iter().chain(endpoints)
    }

    /// Admits the request `charge` describes at `now`: at its admission with one endpoint;
    /// with several, at the first of those serving it, most free capacity first, whose
    /// budgets admit it (the charge then names it).
    pub(crate) fn admit(&self, charge: &mut Charge, now: Instant) -> Admit {
        if self.routes.len() == 1 {
            let mut gate = self.gate();
            let admission = &mut gate.admissions[charge.gate];
            return match admission.try_admit(now, charge.estimate) {
                AdmitDecision::Now => Admit::Now(None),
                AdmitDecision::Wait(at) => Admit::Wait(at, admission.last_wait()),
                AdmitDecision::Never { limit } => Admit::Never { limit },
            };
        }
        if charge.routes == 0 {
            return Admit::NoRoute;
        }
        let mut candidates: Vec<(f64, usize)> = self
            .routes
            .iter()
            .enumerate()
            .filter(|(i, r)| charge.routes & (1 << i) != 0 && r.health().available(now))
            .map(|(i, r)| (r.room(), i))
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut wait: Option<(Instant, Binding)> = None;
        let mut busy = false;
        let mut never = None;
        for (_, i) in candidates {
            let route = &self.routes[i];
            let Ok(permit) = route.permits.clone().try_acquire_owned() else {
                busy = true;
                continue;
            };
            let mut gate = self.gate();
            let admission = &mut gate.admissions[route.gate];
            match admission.try_admit(now, charge.estimate) {
                AdmitDecision::Now => {
                    charge.route = i;
                    charge.gate = route.gate;
                    return Admit::Now(Some(permit));
                }
                AdmitDecision::Wait(at) => {
                    if wait.is_none_or(|(w, _)| at < w) {
                        wait = Some((at, admission.last_wait()));
                    }
                }
                AdmitDecision::Never { limit } => never = Some(limit),
            }
        }
        // Nobody admits it now: the soonest of a budget's refill, an ejected endpoint's
        // return, or an attempt's end.
        let back = self
            .routes
            .iter()
            .enumerate()
            .filter(|(i, _)| charge.routes & (1 << i) != 0)
            .filter_map(|(_, r)| r.health().back_at(now))
            .min();
        match (wait, back) {
            (Some((at, _)), Some(b)) if b < at => Admit::Wait(b, Binding::Paused),
            (Some((at, why)), _) => Admit::Wait(at, why),
            (None, _) if busy => Admit::Busy,
            (None, Some(b)) => Admit::Wait(b, Binding::Paused),
            (None, None) => match never {
                Some(limit) => Admit::Never { limit },
                None => Admit::NoRoute,
            },
        }
    }

    /// Counts an attempt's answer against its endpoint and weighs it for the endpoint's
    /// health; with several endpoints, a failure that is the endpoint's and not the
    /// request's is tried at another, and the request does not go back to the endpoint
    /// that refused it.
    pub(crate) fn route_answered(
        &self,
        charge: &mut Charge,
        outcome: Attempt,
        now: Instant,
    ) -> Attempt {
        let Some(route) = self.routes.get(charge.route) else {
            return outcome;
        };
        let failure = match &outcome {
            Attempt::Done(_) => {
                route.succeeded.fetch_add(1, Ordering::Relaxed);
                route.health().on_success();
                return outcome;
            }
            Attempt::Retry(r) => r.error.kind,
            Attempt::Fail(e) => e.kind,
        };
        route.failed.fetch_add(1, Ordering::Relaxed);
        if self.routes.len() == 1 {
            return outcome;
        }
        if is_endpoint_failure(failure)
            && let Some(out_for) = route.health().on_failure(now)
        {
            tracing::warn!(
                endpoint = %route.name,
                out_for_secs = out_for.as_secs(),
                kind = %failure,
                "endpoint taken out after failures in a row; its requests go to the others"
            );
        }
        let others = (charge.routes & !(1 << charge.route)) != 0;
        match outcome {
            Attempt::Fail(error) if others && worth_another_endpoint(error.kind) => {
                charge.routes &= !(1 << charge.route);
                Attempt::Retry(Retryable::transient(error))
            }
            other => other,
        }
    }

    /// What each endpoint has done, with several.
    pub(crate) fn endpoint_stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        self.routes.iter().map(|r| r.stats(now)).collect()
    }
}
