//! Prices per million tokens, looked up by model name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::estimate::Estimate;
use crate::outcome::Usage;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt (input) tokens.
    pub input: f64,
    /// Prompt tokens read from the provider's cache [default: the input price].
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Completion (output) tokens, reasoning included [default: 0, as for embeddings].
    #[serde(default)]
    pub output: f64,
}

impl Price {
    /// A price with every figure given.
    pub const fn new(input: f64, cached_input: f64, output: f64) -> Self {
        Price {
            input,
            cached_input: Some(cached_input),
            output,
        }
    }

    /// What `usage` costs: cached prompt tokens at the cached price, the rest of the
    /// prompt at the input price, the completion at the output price.
    pub fn cost(&self, usage: Usage) -> f64 {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let fresh = usage.prompt_tokens - cached - written;
        (fresh as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + written as f64 * self.input * CACHE_WRITE_FACTOR
            + usage.completion_tokens as f64 * self.output)
            / 1e6
    }

    /// The most a request with this estimate can cost: its whole prompt uncached and its
    /// whole output allowance used.
    pub fn at_most(&self, estimate: Estimate) -> f64 {
        (estimate.prompt as f64 * self.input + estimate.reserved_output as f64 * self.output) / 1e6
    }

    /// The least it can cost: the prompt alone.
    pub fn at_least(&self, estimate: Estimate) -> f64 {
        estimate.prompt as f64 * self.input / 1e6
    }

    fn valid(&self) -> bool {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        ok(self.input) && ok(self.output) && self.cached_input.is_none_or(ok)
    }
}

/// What a prompt token written to the cache costs, as a multiple of the input price
/// (Anthropic's five-minute cache writes; OpenAI reports no writes).
const CACHE_WRITE_FACTOR: f64 = 1.25;

/// A bad prices file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a prices table.
    #[error(
        "{path}: {message} (expected [models.\"NAME\"] tables with input, output and optional cached_input in dollars per million tokens)"
    )]
    Parse {
        /// The file.
        path: String,
        /// The parser's words, with the line.
        message: String,
    },
    /// A price is negative or not a number.
    #[error(
        "{path}: model {model}: prices must be numbers of dollars per million tokens, 0 or more"
    )]
    Invalid {
        /// The file.
        path: String,
        /// The model.
        model: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesFile {
    /// The day the prices were taken.
    taken: Option<String>,
    #[serde(default)]
    models: BTreeMap<String, Price>,
}

/// Prices by model, with the day they were taken.
#[derive(Debug, Clone)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
    taken: String,
}

impl Default for PriceTable {
    /// The built-in table.
    fn default() -> Self {
        PriceTable::builtin()
    }
}

impl PriceTable {
    /// The built-in table of OpenAI, Anthropic and Google models (standard tier, prompts
    /// in the lowest context tier).
    pub fn builtin() -> Self {
        PriceTable {
            prices: super::builtin::PRICES
                .iter()
                .map(|(m, p)| ((*m).to_owned(), *p))
                .collect(),
            taken: super::builtin::TAKEN.to_owned(),
        }
    }

    /// A table with no prices (every model unknown).
    pub fn empty() -> Self {
        PriceTable {
            prices: BTreeMap::new(),
            taken: String::new(),
        }
    }

    /// The day the prices were taken (`YYYY-MM-DD`), or what a prices file says.
    pub fn taken(&self) -> &str {
        &self.taken
    }

    /// Adds or replaces one model's price.
    pub fn set(&mut self, model: impl Into<String>, price: Price) {
        self.prices.insert(model.into(), price);
    }

    /// Every model and its price, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Price)> {
        self.prices.iter().map(|(m, p)| (m.as_str(), p))
    }

    /// Overrides and extends the table with a TOML prices file:
    ///
    /// ```toml
    /// taken = "2026-11-01"            # optional: when these prices were read
    /// [models."gpt-4o-mini"]
    /// input = 0.15                    # dollars per million prompt tokens
    /// cached_input = 0.075            # optional: cached prompt tokens (default: input)
    /// output = 0.60                   # dollars per million completion tokens
    /// ```
    pub fn merge_toml(&mut self, text: &str, path: &Path) -> Result<(), PriceError> {
        let name = path.display().to_string();
        let file: PricesFile = toml::from_str(text).map_err(|e| PriceError::Parse {
            path: name.clone(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        for (model, price) in file.models {
            if !price.valid() {
                return Err(PriceError::Invalid { path: name, model });
            }
            self.prices.insert(model, price);
        }
        if let Some(taken) = file.taken {
            self.taken = taken;
        }
        Ok(())
    }

    /// [`PriceTable::merge_toml`] with a file's contents.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), PriceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.merge_toml(&text, path)
    }

    /// The price of `model`: its own entry, or that of the name it is a dated snapshot
    /// or alias of (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-5-20250929`,
    /// `claude-3-5-haiku-latest`), or a provider prefix removed (`openai/gpt-4o`,
    /// `models/gemini-2.5-pro`). Nothing else: `gpt-4o-audio-preview` is not `gpt-4o`.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        resolve(model, &|name| self.prices.get(name).copied())
    }
}

/// What is known of a model's size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelWindow {
    /// Prompt plus output tokens.
    pub context: u64,
    /// Output tokens one request may ask for.
    pub max_output: u64,
}

impl ModelWindow {
    /// The known limits of `model` (built in; names resolved as by
    /// [`PriceTable::lookup`]).
    pub fn of(model: &str) -> Option<ModelWindow> {
        resolve(model, &|name| {
            super::builtin::WINDOWS
                .iter()
                .find(|(m, _, _)| *m == name)
                .map(|&(_, context, max_output)| ModelWindow {
                    context,
                    max_output,
                })
        })
    }
}

/// `find` of `model`, of the name it is a snapshot or alias of, or of it without a
/// provider prefix.
fn resolve<T>(model: &str, find: &dyn Fn(&str) -> Option<T>) -> Option<T> {
    if let Some(x) = find(model) {
        return Some(x);
    }
    if let Some((_, rest)) = model.split_once('/') {
        return resolve(rest, find);
    }
    find(strip_snapshot(model)?)
}

/// `model` without a trailing date (`-2024-07-18`, `-20250929`) or `-latest`.
fn strip_snapshot(model: &str) -> Option<&str> {
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (head, last) = model.rsplit_once('-')?;
    if last.len() == 8 && digits(last) {
        return Some(head);
    }
    // -YYYY-MM-DD
    let (head2, month) = head.rsplit_once('-')?;
    let (head3, year) = head2.rsplit_once('-')?;
    (year.len() == 4 && month.len() == 2 && last.len() == 2)
        .then_some(())
        .filter(|()| digits(year) && digits(month) && digits(last))
        .map(|()| head3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            ..Default::default()
        }
    }

    #[test]
    fn cost_prices_fresh_cached_and_output_tokens_apart() {
        let p = Price::new(2.0, 0.5, 8.0);
        // 1,000,000 prompt of which 400,000 cached, 250,000 out:
        // 0.6 M × 2 + 0.4 M × 0.5 + 0.25 M × 8 = 1.2 + 0.2 + 2.0
        let c = p.cost(usage(1_000_000, 400_000, 250_000));
        assert!((c - 3.4).abs() < 1e-9, "{c}");
        // Without a cached price, cached tokens cost the input price.
        let plain = Price {
            input: 1.0,
            cached_input: None,
            output: 0.0,
        };
        assert!((plain.cost(usage(2_000_000, 1_000_000, 0)) - 2.0).abs() < 1e-9);
        let e = Estimate {
            prompt: 1000,
            reserved_output: 500,
        };
        assert!((p.at_most(e) - (1000.0 * 2.0 + 500.0 * 8.0) / 1e6).abs() < 1e-12);
        assert!((p.at_least(e) - 0.002).abs() < 1e-12);
    }

    #[test]
    fn lookup_follows_snapshots_aliases_and_prefixes_only() {
        let t = PriceTable::builtin();
        let mini = t.lookup("gpt-4o-mini").expect("gpt-4o-mini is priced");
        assert_eq!(t.lookup("gpt-4o-mini-2024-07-18"), Some(mini));
        assert_eq!(t.lookup("openai/gpt-4o-mini"), Some(mini));
        assert_ne!(t.lookup("gpt-4o"), Some(mini));
        assert!(t.lookup("claude-sonnet-4-5-20250929").is_some());
        assert!(t.lookup("models/gemini-2.5-flash").is_some());
        assert_eq!(t.lookup("gpt-4o-audio-preview"), None);
        assert_eq!(t.lookup("my-finetune"), None);
        assert!(!t.taken().is_empty());
        let w = ModelWindow::of("gpt-4o-mini-2024-07-18").expect("known window");
        assert_eq!((w.context, w.max_output), (128_000, 16_384));
    }

    #[test]
    fn a_prices_file_overrides_and_extends_and_bad_ones_say_where() {
        let mut t = PriceTable::builtin();
        let text = "taken = \"2026-11-01\"\n[models.\"gpt-4o-mini\"]\ninput = 1.0\noutput = 2.0\n\
                    [models.\"my-model\"]\ninput = 0.5\ncached_input = 0.1\noutput = 1.5\n";
        t.merge_toml(text, Path::new("p.toml")).expect("valid file");
        assert_eq!(t.taken(), "2026-11-01");
        assert_eq!(t.lookup("gpt-4o-mini").map(|p| p.input), Some(1.0));
        assert_eq!(t.lookup("my-model"), Some(Price::new(0.5, 0.1, 1.5)));
        let bad = "[models.x]\ninput = \"cheap\"\n";
        assert!(matches!(
            t.merge_toml(bad, Path::new("p.toml")),
            Err(PriceError::Parse { .. })
        ));
        let negative = "[models.x]\ninput = -1.0\n";
        assert!(matches!(
            t.merge_toml(negative, Path::new("p.toml")),
            Err(PriceError::Invalid { .. })
        ));
        let typo = "[models.x]\ninptu = 1.0\n";
        assert!(t.merge_toml(typo, Path::new("p.toml")).is_err());
    }
}
