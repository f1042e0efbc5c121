//! What an input file's first request says about the provider it is meant for: Anthropic's
//! Message Batches lines (`{"custom_id", "params"}`) and `/v1/messages` lines are for
//! Anthropic, so a run over them needs no `--provider`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::request::Endpoint;
use crate::transport::Provider;

/// How much of a file is read looking for its first request.
const LOOK_AT_MOST: u64 = 4 * 1024 * 1024;

/// The provider the first non-blank line of `path` is written for, if it says: Anthropic
/// for a Messages request, nothing otherwise (OpenAI's lines fit every OpenAI-compatible
/// server, and a bad or missing first line says nothing). Standard input (`-`) is not
/// read.
pub fn provider_of_input(path: &Path) -> Option<Provider> {
    if path == Path::new("-") {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let reader = BufReader::new(file.take(LOOK_AT_MOST));
    let line = reader
        .split(b'\n')
        .map_while(Result::ok)
        .find(|l| !l.trim_ascii().is_empty())?;
    let request = super::parse::parse_batch_line(&line).ok()?;
    (request.endpoint == Endpoint::Messages).then_some(Provider::Anthropic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_params_line_means_anthropic_and_others_say_nothing() {
        let dir = std::env::temp_dir().join(format!("sluice-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
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
}
