//! A plan's figures, and how they are shown: text for a person, JSON (`sluice.plan/1`) for
//! a script.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sluice::cost::PriceTable;

use super::PlanArgs;
use super::tally::{EXAMPLES, Group, Tally};
use crate::commands::values::{RateArg, Rates};
use crate::progress::{dollars, duration};

/// Everything a plan found.
#[derive(Debug, Default)]
pub struct Plan {
    input: String,
    bytes: u64,
    pub lines: u64,
    invalid: BTreeMap<&'static str, u64>,
    invalid_examples: Vec<(u64, &'static str)>,
    tally: Tally,
    budgets: Vec<Budget>,
    prices_taken: String,
    max_cost: Option<f64>,
    elapsed: Duration,
}

/// One admission budget and what the file asks of it.
#[derive(Debug, Clone)]
struct Budget {
    /// `None` for the client's budget, else the model with limits of its own.
    model: Option<String>,
    rates: Rates,
    requests: u64,
    /// What admission charges: prompt plus output allowance.
    tokens: u64,
    /// The prompts alone (the input budget).
    prompt_tokens: u64,
    /// The output allowances alone (the output budget, if every answer used all of it).
    output_tokens: u64,
}

/// The kinds of budget a plan weighs, in the order ties are reported.
const KINDS: [&str; 4] = [
    "requests_per_minute",
    "tokens_per_minute",
    "input_tokens_per_minute",
    "output_tokens_per_minute",
];

impl Budget {
    /// Minutes each budget needs, in the order of [`KINDS`].
    fn minutes(&self) -> [Option<f64>; 4] {
        let per =
            |n: u64, r: Option<RateArg>| r.and_then(|r| r.limit).map(|l| n as f64 / l.get() as f64);
        [
            per(self.requests, self.rates.rpm),
            per(self.tokens, self.rates.tpm),
            per(self.prompt_tokens, self.rates.itpm),
            per(self.output_tokens, self.rates.otpm),
        ]
    }

    fn new(model: Option<String>, rates: Rates) -> Self {
        Budget {
            model,
            rates,
            requests: 0,
            tokens: 0,
            prompt_tokens: 0,
            output_tokens: 0,
        }
    }
}

impl Plan {
    /// A line that cannot be sent.
    pub fn invalid(&mut self, kind: &'static str, line: u64, show: usize) {
        *self.invalid.entry(kind).or_default() += 1;
        if self.invalid_examples.len() < show {
            self.invalid_examples.push((line, kind));
        }
    }

    /// The counts, the budgets of `args` and the time it took.
    pub fn fill(
        &mut self,
        tally: Tally,
        args: &PlanArgs,
        prices: &PriceTable,
        input: &Path,
        bytes: u64,
        elapsed: Duration,
    ) {
        self.input = input.display().to_string();
        self.bytes = bytes;
        self.prices_taken = prices.taken().to_owned();
        self.max_cost = args.cost.max_cost;
        self.elapsed = elapsed;
        let mut main = Budget::new(None, args.limits.rates());
        let mut own: Vec<Budget> = args
            .limits
            .model_limits
            .iter()
            .map(|m| Budget::new(Some(m.model.clone()), m.rates))
            .collect();
        for ((_, model), g) in &tally.groups {
            let b = own
                .iter_mut()
                .find(|b| b.model.as_deref() == Some(model.as_str()))
                .unwrap_or(&mut main);
            b.requests += g.requests;
            b.tokens += g.prompt_tokens + g.max_output_tokens;
            b.prompt_tokens += g.prompt_tokens;
            b.output_tokens += g.max_output_tokens;
        }
        self.budgets = std::iter::once(main).chain(own).collect();
        self.tally = tally;
    }

    fn requests(&self) -> u64 {
        self.tally.groups.values().map(|g| g.requests).sum()
    }

    fn invalid_total(&self) -> u64 {
        self.invalid.values().sum()
    }

    /// Whether anything would fail or waste money.
    pub fn has_problems(&self) -> bool {
        self.invalid_total() > 0 || !self.tally.problems.is_empty()
    }

    /// The cost range over priced requests, and the requests without a price.
    fn cost(&self) -> (f64, Option<f64>, u64) {
        let (mut min, mut max, mut unpriced) = (0.0, Some(0.0), 0);
        for g in self.tally.groups.values() {
            match g.cost_min_usd {
                Some(c) => min += c,
                None => unpriced += g.requests,
            }
            max = match (max, g.cost_max_usd, g.cost_min_usd) {
                (Some(m), Some(c), _) => Some(m + c),
                // No price at all: left out, and counted as unpriced.
                (Some(m), None, None) => Some(m),
                _ => None,
            };
        }
        (min, max, unpriced)
    }

    /// The least time the limits allow, and what binds it: (seconds, budget, limit kind).
    fn minimum(&self) -> Option<(f64, Option<&str>, &'static str)> {
        let mut best: Option<(f64, Option<&str>, &'static str)> = None;
        for b in &self.budgets {
            for (minutes, kind) in b.minutes().into_iter().zip(KINDS) {
                if let Some(m) = minutes
                    && best.is_none_or(|x| m * 60.0 > x.0)
                {
                    best = Some((m * 60.0, b.model.as_deref(), kind));
                }
            }
        }
        best
    }

    pub fn to_json(&self) -> Value {
        let (min, max, unpriced) = self.cost();
        let minimum = self.minimum();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        json!({
            "schema": "sluice.plan/1",
            "input": self.input,
            "lines": self.lines,
            "requests": self.requests(),
            "groups": self.tally.groups.iter().map(|((endpoint, model), g)| {
                let mut v = serde_json::to_value(g).unwrap_or_default();
                v["endpoint"] = json!(endpoint);
                v["model"] = json!(model);
                v
            }).collect::<Vec<_>>(),
            "cost": {
                "min_usd": min,
                "max_usd": max,
                "unpriced_requests": unpriced,
                "prices_taken": self.prices_taken,
                "max_cost": self.max_cost,
            },
            "duration": {
                "minimum_s": minimum.map(|m| m.0),
                "binding": minimum.map(|m| m.2),
                "binding_model": minimum.and_then(|m| m.1),
                "budgets": self.budgets.iter().map(|b| {
                    let [rpm, tpm, itpm, otpm] = b.minutes();
                    let limit = |r: Option<RateArg>| r.and_then(|r| r.limit).map(|l| l.get());
                    json!({
                        "model": b.model,
                        "requests": b.requests,
                        "tokens": b.tokens,
                        "prompt_tokens": b.prompt_tokens,
                        "output_tokens": b.output_tokens,
                        "rpm": limit(b.rates.rpm),
                        "tpm": limit(b.rates.tpm),
                        "itpm": limit(b.rates.itpm),
                        "otpm": limit(b.rates.otpm),
                        "minutes_by_rpm": rpm,
                        "minutes_by_tpm": tpm,
                        "minutes_by_itpm": itpm,
                        "minutes_by_otpm": otpm,
                    })
                }).collect::<Vec<_>>(),
            },
            "invalid": {
                "total": self.invalid_total(),
                "by_kind": self.invalid,
                "examples": self.invalid_examples.iter().map(|(l, k)| json!({"line": l, "kind": k})).collect::<Vec<_>>(),
            },
            "problems": self.tally.problems.iter().map(|(p, (n, lines))| {
                (serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                 json!({"count": n, "lines": lines}))
            }).collect::<serde_json::Map<_, _>>(),
            "read": {"bytes": self.bytes, "seconds": secs, "mb_per_s": self.bytes as f64 / 1e6 / secs},
        })
    }

    pub fn to_text(&self, show: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "── sluice plan: {} ({} lines, {} requests) ──",
            self.input,
            self.lines,
            self.requests()
        );
        let _ = writeln!(
            out,
            "  {:<22} {:<24} {:>9} {:>13} {:>13} {:>22}",
            "endpoint", "model", "requests", "prompt tok", "max output", "cost"
        );
        for ((endpoint, model), g) in &self.tally.groups {
            let _ = writeln!(
                out,
                "  {:<22} {:<24} {:>9} {:>13} {:>13} {:>22}",
                endpoint,
                if model.is_empty() { "(none)" } else { model },
                g.requests,
                g.prompt_tokens,
                output_words(g),
                range(g.cost_min_usd, g.cost_max_usd)
            );
        }
        let (min, max, unpriced) = self.cost();
        let _ = write!(
            out,
            "  cost         {} (prompts only) to {} (prompts plus every max_tokens), prices of {}",
            dollars(min),
            max.map_or_else(|| "unknown".to_owned(), dollars),
            self.prices_taken
        );
        if unpriced > 0 {
            let _ = write!(
                out,
                "; {unpriced} requests of models without a price (cost unknown)"
            );
        }
        out.push('\n');
        if let (Some(cap), Some(max)) = (self.max_cost, max)
            && max > cap
        {
            let _ = writeln!(
                out,
                "  max-cost     the most it can cost is above --max-cost {}: the run may stop before the end (exit 7)",
                dollars(cap)
            );
        }
        match self.minimum() {
            Some((secs, model, kind)) => {
                let scope = model.map_or_else(String::new, |m| format!(" of {m}"));
                let what = match kind {
                    "requests_per_minute" => "requests-per-minute",
                    "tokens_per_minute" => "tokens-per-minute (prompt plus max_tokens)",
                    "input_tokens_per_minute" => "input-tokens-per-minute",
                    _ => "output-tokens-per-minute (if every answer used its max_tokens)",
                };
                let _ = writeln!(
                    out,
                    "  duration     at least {} under the given limits: the {what} budget{scope} binds",
                    duration(Duration::from_secs_f64(secs))
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  duration     no --rpm, --tpm, --itpm or --otpm given: the server's limits and \
                     --concurrency decide"
                );
            }
        }
        if self.invalid_total() > 0 {
            let kinds: Vec<String> = self
                .invalid
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  rejected     {} lines ({}); `sluice validate` lists them",
                self.invalid_total(),
                kinds.join(", ")
            );
            for (line, kind) in self.invalid_examples.iter().take(show) {
                let _ = writeln!(out, "    {}:{line}: {kind}", self.input);
            }
        }
        for (p, (n, lines)) in &self.tally.problems {
            let shown: Vec<String> = lines
                .iter()
                .take(show.min(EXAMPLES))
                .map(u64::to_string)
                .collect();
            let _ = writeln!(
                out,
                "  problem      {n} requests: {} (lines {}{})",
                p.describe(),
                shown.join(", "),
                if *n > shown.len() as u64 { ", ..." } else { "" }
            );
        }
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "  read         {:.1} MB in {:.2} s ({:.0} MB/s)",
            self.bytes as f64 / 1e6,
            secs,
            self.bytes as f64 / 1e6 / secs
        );
        out
    }
}

fn output_words(g: &Group) -> String {
    if g.without_max_tokens > 0 {
        format!("{}+{} unset", g.max_output_tokens, g.without_max_tokens)
    } else {
        g.max_output_tokens.to_string()
    }
}

fn range(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{} – {}", dollars(a), dollars(b)),
        (Some(a), None) => format!("{} – ?", dollars(a)),
        _ => "unknown".to_owned(),
    }
}
