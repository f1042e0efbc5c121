//! The flags that say how to read an input, shared by `run` and `validate` so that the
//! two read every file the same way.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sluice::input::{Format, InputOptions, PromptOptions, SettingNames};

use super::usage;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// Batch lines if the lines start JSON objects, prompts otherwise (bad lines before the
    /// first one that tells are reported and decide nothing).
    Auto,
    Batch,
    Prompts,
}

/// How to read the input.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Requests: a file of OpenAI Batch API lines or of plain prompts; `-` for stdin.
    pub input: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Model for plain prompts (required for the prompts format).
    #[arg(long)]
    model: Option<String>,
    /// System message before each plain prompt.
    #[arg(long)]
    system: Option<String>,
    /// max_tokens for plain prompts.
    #[arg(long)]
    max_tokens: Option<u64>,
    /// temperature for plain prompts.
    #[arg(long)]
    temperature: Option<f64>,
    /// Longer lines are errors (and are never held in memory whole).
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_parser = super::values::bytes)]
    max_line_bytes: u64,
}

impl InputArgs {
    /// How to read the input.
    pub fn options(&self) -> anyhow::Result<InputOptions> {
        let format = match self.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Batch => Format::Batch,
            FormatArg::Prompts => Format::Prompts,
        };
        if matches!(format, Format::Prompts) && self.model.is_none() {
            usage!("--format prompts needs --model");
        }
        Ok(InputOptions {
            format,
            prompts: self.model.as_ref().map(|model| PromptOptions {
                model: model.clone(),
                system: self.system.clone(),
                max_tokens: self.max_tokens,
                temperature: self.temperature,
            }),
            max_line_bytes: usize::try_from(self.max_line_bytes).unwrap_or(usize::MAX),
            names: SettingNames {
                model: "--model",
                max_line_bytes: "--max-line-bytes",
            },
            skip: Default::default(),
        })
    }
}
