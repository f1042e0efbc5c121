//! What a plan counts of each request, on several threads at once: requests, tokens and
//! cost by endpoint and model, and the problems that cost money later.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice::cost::{ModelWindow, PriceTable};
use sluice::estimate::inspect;
use sluice::{Endpoint, Request};

/// A problem found in a request that the server would reject or that wastes money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The body has no `model`.
    MissingModel,
    /// A chat body has no `messages`.
    MissingMessages,
    /// `max_tokens` (or its kin) is above what the model can produce in one answer.
    MaxTokensAboveModelLimit,
    /// The prompt alone is longer than the model's context window.
    PromptAboveContextWindow,
    /// The prompt fits, but the prompt plus `max_tokens` does not.
    PromptPlusMaxTokensAboveContextWindow,
}

impl Problem {
    pub fn describe(self) -> &'static str {
        match self {
            Problem::MissingModel => "the body has no model",
            Problem::MissingMessages => "a chat body has no messages",
            Problem::MaxTokensAboveModelLimit => {
                "max_tokens is above the most the model can write in one answer"
            }
            Problem::PromptAboveContextWindow => {
                "the prompt is longer than the model's context window"
            }
            Problem::PromptPlusMaxTokensAboveContextWindow => {
                "the prompt plus max_tokens is longer than the model's context window"
            }
        }
    }
}

/// Lines kept as examples of each problem.
pub const EXAMPLES: usize = 5;

/// Requests of one endpoint and model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Group {
    pub requests: u64,
    pub prompt_tokens: u64,
    /// Output tokens the requests allow at most (max_tokens times n).
    pub max_output_tokens: u64,
    /// Requests that set no output limit.
    pub without_max_tokens: u64,
    /// Dollars for the prompts alone (null without a price).
    pub cost_min_usd: Option<f64>,
    /// Dollars for the prompts plus every output allowance; requests without a limit count
    /// at the model's largest answer (null without a price, or when that is unknown).
    pub cost_max_usd: Option<f64>,
}

/// The counts of part of the file.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// By (endpoint path, model).
    pub groups: BTreeMap<(&'static str, String), Group>,
    /// By problem: how many, and the first lines.
    pub problems: BTreeMap<Problem, (u64, Vec<u64>)>,
}

impl Tally {
    /// Counts one request of input line `line`.
    pub fn add(&mut self, line: u64, request: &Request, prices: &PriceTable) {
        let found = inspect(request.endpoint, &request.body);
        let e = found.estimate;
        let chat = request.endpoint == Endpoint::ChatCompletions;
        if found.model.is_empty() {
            self.problem(Problem::MissingModel, line);
        }
        if chat && !found.has_messages {
            self.problem(Problem::MissingMessages, line);
        }
        let window = ModelWindow::of(&found.model);
        if let Some(w) = window {
            if found.output_limit.is_some_and(|m| m > w.max_output) && w.max_output > 0 {
                self.problem(Problem::MaxTokensAboveModelLimit, line);
            }
            if e.prompt > w.context {
                self.problem(Problem::PromptAboveContextWindow, line);
            } else if e.prompt + found.output_limit.unwrap_or(0) > w.context {
                self.problem(Problem::PromptPlusMaxTokensAboveContextWindow, line);
            }
        }
        let price = prices.lookup(&found.model);
        let group = self
            .groups
            .entry((request.endpoint.batch_url(), found.model.clone()))
            .or_default();
        let first = group.requests == 0;
        group.requests += 1;
        group.prompt_tokens += e.prompt;
        group.max_output_tokens += e.reserved_output;
        let unbounded = found.output_limit.is_none() && request.endpoint != Endpoint::Embeddings;
        group.without_max_tokens += u64::from(unbounded);
        let (min, max) = match price {
            Some(p) => {
                let most = if unbounded {
                    window.map(|w| {
                        p.at_most(sluice::estimate::Estimate {
                            prompt: e.prompt,
                            reserved_output: w.max_output,
                        })
                    })
                } else {
                    Some(p.at_most(e))
                };
                (Some(p.at_least(e)), most)
            }
            None => (None, None),
        };
        group.cost_min_usd = add(group.cost_min_usd, min, first);
        group.cost_max_usd = add(group.cost_max_usd, max, first);
    }

    fn problem(&mut self, p: Problem, line: u64) {
        let (n, lines) = self.problems.entry(p).or_default();
        *n += 1;
        if lines.len() < EXAMPLES {
            lines.push(line);
        }
    }

    /// Adds another part's counts.
    pub fn merge(&mut self, other: Tally) {
        for (key, g) in other.groups {
            match self.groups.get_mut(&key) {
                None => {
                    self.groups.insert(key, g);
                }
                Some(mine) => {
                    mine.requests += g.requests;
                    mine.prompt_tokens += g.prompt_tokens;
                    mine.max_output_tokens += g.max_output_tokens;
                    mine.without_max_tokens += g.without_max_tokens;
                    mine.cost_min_usd = sum(mine.cost_min_usd, g.cost_min_usd);
                    mine.cost_max_usd = sum(mine.cost_max_usd, g.cost_max_usd);
                }
            }
        }
        for (p, (n, lines)) in other.problems {
            let (mine, examples) = self.problems.entry(p).or_default();
            *mine += n;
            examples.extend(lines);
            examples.sort_unstable();
            examples.truncate(EXAMPLES);
        }
    }
}

/// A running sum that stays unknown once any part is unknown.
fn add(total: Option<f64>, part: Option<f64>, first: bool) -> Option<f64> {
    match (total, part) {
        (_, None) => None,
        (None, Some(p)) if first => Some(p),
        (None, Some(_)) => None,
        (Some(t), Some(p)) => Some(t + p),
    }
}

fn sum(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? + b?)
}
