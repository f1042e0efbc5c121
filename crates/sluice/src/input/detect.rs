//! What an input file's first request says: the provider it is meant for (Anthropic's
//! Message Batches lines, `{"custom_id", "params"}`, and `/v1/messages` lines are for
//! Anthropic, so a run over them needs no `--provider`), and the model it is for.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::InputOptions;
use crate::request::{Endpoint, request_model};
use crate::transport::Provider;

/// How much of a file is read looking for its first request.
const LOOK_AT_MOST: u64 = 4 * 1024 * 1024;

/// The provider the first non-blank line of `path` is written for, if it says: Anthropic
/// for a Messages request, nothing otherwise (OpenAI's lines fit every OpenAI-compatible
/// server, and a bad or missing first line says nothing). Standard input (`-`) is not
/// read.
pub fn provider_of_input(path: &Path) -> Option<Provider> {
    let request = super::parse::parse_batch_line(&first_line(path)?).ok()?;
    (request.endpoint == Endpoint::Messages).then_some(Provider::Anthropic)
}

/// The model the first request of `path` is for: its body's `model`, or for a plain
/// prompt the model `options` send prompts to. Standard input (`-`) is not read. A run
/// that counts tokens builds that model's encoding with it, before the first request
/// needs it.
pub fn first_model(path: &Path, options: &InputOptions) -> Option<String> {
    let line = first_line(path)?;
    match super::parse::parse_batch_line(&line) {
        Ok(request) => request_model(&request.body).map(|m| m.into_owned()),
        Err(_) => options.prompts.as_ref().map(|p| p.model.clone()),
    }
}

/// The first non-blank line of a file, within its first [`LOOK_AT_MOST`] bytes.
fn first_line(path: &Path) -> Option<Vec<u8>> {
    if path == Path::new("-") {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    BufReader::new(file.take(LOOK_AT_MOST))
        .split(b'\n')
        .map_while(Result::ok)
        .find(|l| !l.trim_ascii().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test, and a way to write files into it.
    fn folder(
        name: &str,
    ) -> (
        std::path::PathBuf,
        impl Fn(&str, &str) -> std::path::PathBuf,
    ) {
        let dir = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = dir.clone();
        let write = move |file: &str, text: &str| {
            let path = at.join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        (dir, write)
    }

    #[test]
    fn a_params_line_means_anthropic_and_others_say_nothing() {
        let (dir, write) = folder("detect");
        let anthropic = write(
            "a.jsonl",
            "\n{\"custom_id\":\"1\",\"params\":{\"model\":\"claude\",\"max_tokens\":5,\"messages\":[]}}\n",
        );
        assert_eq!(provider_of_input(&anthropic), Some(Provider::Anthropic));
        let openai = write(
            "o.jsonl",
            "{\"custom_id\":\"1\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n",
        );
        assert_eq!(provider_of_input(&openai), None);
        assert_eq!(provider_of_input(&write("p.txt", "hello\n")), None);
        assert_eq!(provider_of_input(Path::new("-")), None);
        assert_eq!(provider_of_input(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_first_model_is_the_first_bodys_or_the_prompts_model() {
        let (dir, write) = folder("first-model");
        let batch = write(
            "b.jsonl",
            "\n{\"custom_id\":\"1\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\"}}\n",
        );
        let plain = InputOptions::default();
        assert_eq!(first_model(&batch, &plain).as_deref(), Some("gpt-4o-mini"));
        let prompts = write("p.txt", "hello\n");
        assert_eq!(first_model(&prompts, &plain), None);
        let with_model = InputOptions {
            prompts: Some(crate::input::PromptOptions {
                model: "gpt-4.1".to_owned(),
                system: None,
                max_tokens: None,
                temperature: None,
            }),
            ..InputOptions::default()
        };
        assert_eq!(
            first_model(&prompts, &with_model).as_deref(),
            Some("gpt-4.1")
        );
        assert_eq!(first_model(Path::new("-"), &with_model), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
