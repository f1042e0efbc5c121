//! The built-in prices and model limits. Standard (not batch, not priority) tier, in US
//! dollars per million tokens, as the providers' pricing pages listed them on [`TAKEN`];
//! prompts in the lowest context tier (Gemini 2.5 Pro doubles above 200k tokens). Prices
//! change: `--prices FILE` overrides any entry.

use super::Price;

/// The day these prices were taken from the providers' pages.
pub const TAKEN: &str = "2025-08-20";

/// Model, price.
pub const PRICES: &[(&str, Price)] = &[
    // OpenAI
    ("gpt-5", Price::new(1.25, 0.125, 10.0)),
    ("gpt-5-mini", Price::new(0.25, 0.025, 2.0)),
    ("gpt-5-nano", Price::new(0.05, 0.005, 0.40)),
    ("gpt-4.1", Price::new(2.0, 0.50, 8.0)),
    ("gpt-4.1-mini", Price::new(0.40, 0.10, 1.60)),
    ("gpt-4.1-nano", Price::new(0.10, 0.025, 0.40)),
    ("gpt-4o", Price::new(2.50, 1.25, 10.0)),
    ("gpt-4o-mini", Price::new(0.15, 0.075, 0.60)),
    ("o1", Price::new(15.0, 7.50, 60.0)),
    ("o3", Price::new(2.0, 0.50, 8.0)),
    ("o3-mini", Price::new(1.10, 0.55, 4.40)),
    ("o4-mini", Price::new(1.10, 0.275, 4.40)),
    ("gpt-3.5-turbo", Price::new(0.50, 0.50, 1.50)),
    ("text-embedding-3-small", Price::new(0.02, 0.02, 0.0)),
    ("text-embedding-3-large", Price::new(0.13, 0.13, 0.0)),
    ("text-embedding-ada-002", Price::new(0.10, 0.10, 0.0)),
    // Anthropic (cached: cache reads)
    ("claude-opus-4-1", Price::new(15.0, 1.50, 75.0)),
    ("claude-opus-4-0", Price::new(15.0, 1.50, 75.0)),
    ("claude-opus-4", Price::new(15.0, 1.50, 75.0)),
    ("claude-sonnet-4-5", Price::new(3.0, 0.30, 15.0)),
    ("claude-sonnet-4-0", Price::new(3.0, 0.30, 15.0)),
    ("claude-sonnet-4", Price::new(3.0, 0.30, 15.0)),
    ("claude-3-7-sonnet", Price::new(3.0, 0.30, 15.0)),
    ("claude-haiku-4-5", Price::new(1.0, 0.10, 5.0)),
    ("claude-3-5-haiku", Price::new(0.80, 0.08, 4.0)),
    // Google (text input; cached: context-cache reads)
    ("gemini-2.5-pro", Price::new(1.25, 0.31, 10.0)),
    ("gemini-2.5-flash", Price::new(0.30, 0.075, 2.50)),
    ("gemini-2.5-flash-lite", Price::new(0.10, 0.025, 0.40)),
    ("gemini-2.0-flash", Price::new(0.10, 0.025, 0.40)),
];

/// Model, context window (prompt plus output tokens), most output tokens per request.
pub const WINDOWS: &[(&str, u64, u64)] = &[
    ("gpt-5", 400_000, 128_000),
    ("gpt-5-mini", 400_000, 128_000),
    ("gpt-5-nano", 400_000, 128_000),
    ("gpt-4.1", 1_047_576, 32_768),
    ("gpt-4.1-mini", 1_047_576, 32_768),
    ("gpt-4.1-nano", 1_047_576, 32_768),
    ("gpt-4o", 128_000, 16_384),
    ("gpt-4o-mini", 128_000, 16_384),
    ("o1", 200_000, 100_000),
    ("o3", 200_000, 100_000),
    ("o3-mini", 200_000, 100_000),
    ("o4-mini", 200_000, 100_000),
    ("gpt-3.5-turbo", 16_385, 4_096),
    ("text-embedding-3-small", 8_191, 0),
    ("text-embedding-3-large", 8_191, 0),
    ("text-embedding-ada-002", 8_191, 0),
    ("claude-opus-4-1", 200_000, 32_000),
    ("claude-opus-4-0", 200_000, 32_000),
    ("claude-opus-4", 200_000, 32_000),
    ("claude-sonnet-4-5", 200_000, 64_000),
    ("claude-sonnet-4-0", 200_000, 64_000),
    ("claude-sonnet-4", 200_000, 64_000),
    ("claude-3-7-sonnet", 200_000, 64_000),
    ("claude-haiku-4-5", 200_000, 64_000),
    ("claude-3-5-haiku", 200_000, 8_192),
    ("gemini-2.5-pro", 1_048_576, 65_536),
    ("gemini-2.5-flash", 1_048_576, 65_536),
    ("gemini-2.5-flash-lite", 1_048_576, 65_536),
    ("gemini-2.0-flash", 1_048_576, 8_192),
];
