//! Fault injection: which faults exist, and a plan that draws one per request.
//!
//! Draws come from an RNG seeded with the simulator's seed and the request's arrival
//! number, so the same seed gives the same sequence of faults over the same number of
//! requests, whatever the timing of the connections.

use std::fmt;
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::config::ConfigError;

/// A fault the simulator can inject into a request it has admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// An HTTP error status with an OpenAI error body: 408, 429 (a sparse refusal with a
    /// one-second retry-after, whatever the budget), 500, 502, 503, 504 or 529.
    Status(u16),
    /// The connection is reset (TCP RST) before any response is sent.
    Reset,
    /// The response head and part of the body are sent, then the connection closes.
    CloseMidBody,
    /// The request is never answered.
    Hang,
    /// The body is sent in small pieces with a pause between them.
    Trickle,
    /// A 200 whose body is not valid JSON.
    MalformedJson,
    /// A 400 `invalid_request_error`, as if the request were malformed.
    BadRequest,
    /// A 503 whose body says the model is overloaded, as Gemini sends it (a bare
    /// [`Fault::Status`] 503 does not say so).
    Overloaded,
}

impl Fault {
    /// The statuses [`Fault::Status`] accepts.
    pub const STATUSES: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];

    /// Every kind, one of each status; handy for tests and help texts.
    pub fn all() -> Vec<Fault> {
        let mut all: Vec<Fault> = Self::STATUSES.iter().map(|&s| Fault::Status(s)).collect();
        all.extend([
            Fault::Reset,
            Fault::CloseMidBody,
            Fault::Hang,
            Fault::Trickle,
            Fault::MalformedJson,
            Fault::BadRequest,
            Fault::Overloaded,
        ]);
        all
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(s) => write!(f, "{s}"),
            Fault::Reset => f.write_str("reset"),
            Fault::CloseMidBody => f.write_str("close-mid-body"),
            Fault::Hang => f.write_str("hang"),
            Fault::Trickle => f.write_str("trickle"),
            Fault::MalformedJson => f.write_str("malformed-json"),
            Fault::BadRequest => f.write_str("bad-request"),
            Fault::Overloaded => f.write_str("overloaded"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fault = match s {
            "reset" => Fault::Reset,
            "close-mid-body" => Fault::CloseMidBody,
            "hang" => Fault::Hang,
            "trickle" => Fault::Trickle,
            "malformed-json" => Fault::MalformedJson,
            "bad-request" | "400" => Fault::BadRequest,
            "overloaded" => Fault::Overloaded,
            other => match other.parse::<u16>() {
                Ok(status) if Fault::STATUSES.contains(&status) => Fault::Status(status),
                _ => {
                    return Err(format!(
                        "unknown fault `{s}`; expected one of 408, 429, 500, 502, 503, 504, 529, \
                         reset, close-mid-body, hang, trickle, malformed-json, bad-request"
                    ));
                }
            },
        };
        Ok(fault)
    }
}

/// The faults to inject and their probabilities, as a cumulative table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// `(upper bound of the cumulative probability, fault)`, ascending.
    table: Vec<(f64, Fault)>,
}

impl FaultPlan {
    /// Validates the probabilities; the same fault named twice adds up.
    pub fn new(faults: Vec<(Fault, f64)>) -> Result<Self, ConfigError> {
        let mut table = Vec::with_capacity(faults.len());
        let mut sum = 0.0;
        for (fault, probability) in faults {
            if !(0.0..=1.0).contains(&probability) {
                return Err(ConfigError::BadProbability { fault, probability });
            }
            if probability == 0.0 {
                continue;
            }
            sum += probability;
            table.push((sum, fault));
        }
        if sum > 1.0 + 1e-9 {
            return Err(ConfigError::FaultSumTooLarge(sum));
        }
        Ok(FaultPlan { table })
    }

    /// True when no fault is ever injected.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The fault for a uniform draw `u` in `[0, 1)`, if any.
    pub fn pick(&self, u: f64) -> Option<Fault> {
        self.table
            .iter()
            .find(|(upper, _)| u < *upper)
            .map(|&(_, f)| f)
    }
}

/// A fault injected into a share of the requests received within a span of time (a
/// provider-wide overload for ten seconds, say), on top of the [`FaultPlan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultWindow {
    /// The fault.
    pub fault: Fault,
    /// Its probability per request received within the window.
    pub probability: f64,
    /// When the window opens, from the simulator's start.
    pub from: std::time::Duration,
    /// When it closes.
    pub until: std::time::Duration,
}

impl FaultWindow {
    /// Whether a request received at `at` (since the start) falls in the window.
    pub fn covers(&self, at: std::time::Duration) -> bool {
        at >= self.from && at < self.until
    }
}

impl FromStr for FaultWindow {
    type Err = String;

    /// `KIND=P@FROM-UNTIL`, in seconds: `529=0.3@20-30`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage =
            || format!("`{s}`: expected KIND=P@FROM-UNTIL in seconds, for example 529=0.3@20-30");
        let (spec, span) = s.split_once('@').ok_or_else(usage)?;
        let (kind, p) = spec.split_once('=').ok_or_else(usage)?;
        let (from, until) = span.split_once('-').ok_or_else(usage)?;
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .and_then(|x| std::time::Duration::try_from_secs_f64(x).ok())
                .ok_or_else(usage)
        };
        let probability: f64 = p.parse().map_err(|_| usage())?;
        if !(0.0..=1.0).contains(&probability) {
            return Err(usage());
        }
        let (from, until) = (secs(from)?, secs(until)?);
        if until <= from {
            return Err(usage());
        }
        Ok(FaultWindow {
            fault: kind.parse()?,
            probability,
            from,
            until,
        })
    }
}

/// The random draws of one request: its fault and its latency jitter.
pub(crate) struct Draws {
    rng: SmallRng,
}

impl Draws {
    /// Draws for the `seq`-th request received under `seed`.
    pub(crate) fn new(seed: u64, seq: u64) -> Self {
        // Spread consecutive sequence numbers apart before seeding (splitmix's constant).
        let mixed = seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Draws {
            rng: SmallRng::seed_from_u64(mixed),
        }
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for fault in Fault::all() {
            assert_eq!(fault.to_string().parse::<Fault>().unwrap(), fault);
        }
        assert!("418".parse::<Fault>().is_err());
    }

    #[test]
    fn a_fault_window_parses_and_covers_its_span() {
        let w: FaultWindow = "529=0.3@20-30".parse().unwrap();
        assert_eq!((w.fault, w.probability), (Fault::Status(529), 0.3));
        let s = std::time::Duration::from_secs;
        assert!(!w.covers(s(19)) && w.covers(s(20)) && w.covers(s(29)) && !w.covers(s(30)));
        for bad in [
            "529=0.3",
            "529=2@1-2",
            "529=0.3@5-5",
            "teapot=0.1@1-2",
            "529=0.3@a-2",
        ] {
            assert!(bad.parse::<FaultWindow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pick_follows_cumulative_table() {
        let plan = FaultPlan::new(vec![(Fault::Status(500), 0.1), (Fault::Reset, 0.2)]).unwrap();
        assert_eq!(plan.pick(0.05), Some(Fault::Status(500)));
        assert_eq!(plan.pick(0.15), Some(Fault::Reset));
        assert_eq!(plan.pick(0.29), Some(Fault::Reset));
        assert_eq!(plan.pick(0.31), None);
    }

    #[test]
    fn draws_are_deterministic_per_seed_and_sequence() {
        let a: Vec<f64> = (0..5).map(|i| Draws::new(7, i).unit()).collect();
        let b: Vec<f64> = (0..5).map(|i| Draws::new(7, i).unit()).collect();
        let c: Vec<f64> = (0..5).map(|i| Draws::new(8, i).unit()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
