//! Which API dialect a base URL speaks: where each endpoint's URL is, how the key is sent,
//! the headers the provider requires, and where its SDK looks for the key and the URL.
//!
//! Only the way *to* the server differs by dialect. The way back needs none: an answer's
//! usage (`prompt_tokens` or `input_tokens` with Anthropic's cache fields), its error body
//! (OpenAI's `error.code` or Anthropic's `error.type`), its rate headers (`x-ratelimit-*` or
//! `anthropic-ratelimit-*`) and its retry hints are each read from whichever form the
//! answer carries, so a gateway that mixes them is understood too. The engine's
//! admission, retries and journal never see a dialect.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;
use crate::request::Endpoint;

/// The API version sent to Anthropic (`anthropic-version`), the one its SDKs send.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A provider's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI and every OpenAI-compatible server (Groq, Together, Fireworks, OpenRouter,
    /// vLLM, Gemini's OpenAI endpoint...): `{base}/chat/completions` with a base ending in
    /// `/v1`, `Authorization: Bearer KEY`.
    #[default]
    OpenAi,
    /// Anthropic's Messages API: `{base}/v1/messages` with a base of
    /// `https://api.anthropic.com`, `x-api-key: KEY` and `anthropic-version`.
    Anthropic,
    /// Azure OpenAI: a deployment URL (`https://NAME.openai.azure.com/openai/deployments/
    /// DEPLOYMENT?api-version=...`) with the endpoint's path added before the query,
    /// `api-key: KEY`.
    Azure,
}

impl Provider {
    /// Every dialect.
    pub const ALL: [Provider; 3] = [Provider::OpenAi, Provider::Anthropic, Provider::Azure];

    /// The name on the command line and in endpoint files.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Azure => "azure",
        }
    }

    /// The base URL when none is given; Azure has none (every deployment has its own).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi => Some("https://api.openai.com/v1"),
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::Azure => None,
        }
    }

    /// The variable the provider's own SDK reads the key from.
    pub fn key_env(self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Azure => "AZURE_OPENAI_API_KEY",
        }
    }

    /// The variable the provider's own SDK reads the base URL from, if it has one.
    pub fn base_url_env(self) -> Option<&'static str> {
        match self {
            Provider::OpenAi => Some("OPENAI_BASE_URL"),
            Provider::Anthropic => Some("ANTHROPIC_BASE_URL"),
            Provider::Azure => None,
        }
    }

    /// How the key is sent.
    pub fn auth(self) -> super::AuthStyle {
        match self {
            Provider::OpenAi => super::AuthStyle::Bearer,
            Provider::Anthropic => super::AuthStyle::XApiKey,
            Provider::Azure => super::AuthStyle::ApiKeyHeader,
        }
    }

    /// Headers the provider requires on every request, besides the key.
    pub(crate) fn required_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Provider::Anthropic => &[("anthropic-version", ANTHROPIC_VERSION)],
            Provider::OpenAi | Provider::Azure => &[],
        }
    }

    /// The URL of `endpoint` under `base`: the endpoint's path appended to the base's
    /// path (for Anthropic the whole `/v1/...` path, as its SDK adds it; a base that
    /// already ends in `/v1` is not given a second one), the base's query string (Azure's
    /// `?api-version=...`) kept where it belongs, after it.
    pub(crate) fn endpoint_url(
        self,
        base: &str,
        endpoint: Endpoint,
    ) -> Result<url::Url, ConfigError> {
        let bad = || ConfigError::BadBaseUrl(base.to_owned());
        let mut url = url::Url::parse(base.trim()).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(bad());
        }
        let base_path = url.path().trim_end_matches('/');
        let path = match self {
            Provider::Anthropic => {
                let root = base_path.strip_suffix("/v1").unwrap_or(base_path);
                format!("{root}{}", endpoint.batch_url())
            }
            Provider::OpenAi | Provider::Azure => format!("{base_path}{}", endpoint.path()),
        };
        url.set_path(&path);
        url.set_fragment(None);
        Ok(url)
    }
}

/// Hosts of providers known to answer 503 when they are overloaded (and 429 only above an
/// account's rate): Together and Fireworks. Their bare 503s slow everyone as a 529 does.
const OVERLOAD_503_HOSTS: [&str; 3] = ["api.together.xyz", "api.together.ai", "api.fireworks.ai"];

/// Whether the server at `base_url` is known to mean overload by a 503.
pub fn sends_503_for_overload(base_url: &str) -> bool {
    url::Url::parse(base_url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| OVERLOAD_503_HOSTS.contains(&host.as_str()))
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown provider `{s}`; expected openai, anthropic or azure"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths_go_before_the_base_urls_query_string() {
        let azure = "https://x.openai.azure.com/openai/deployments/gpt4o?api-version=2024-06-01";
        for e in Endpoint::ALL {
            let url = Provider::Azure.endpoint_url(azure, e).unwrap();
            assert_eq!(url.path(), format!("/openai/deployments/gpt4o{}", e.path()));
            assert_eq!(url.query(), Some("api-version=2024-06-01"));
        }
        let plain = Provider::OpenAi
            .endpoint_url("http://127.0.0.1:8080/v1/", Endpoint::ChatCompletions)
            .unwrap();
        assert_eq!(plain.as_str(), "http://127.0.0.1:8080/v1/chat/completions");
        assert!(
            Provider::OpenAi
                .endpoint_url("ftp://x/v1", Endpoint::Embeddings)
                .is_err()
        );
        assert!(
            Provider::OpenAi
                .endpoint_url("not a url", Endpoint::Embeddings)
                .is_err()
        );
    }

    #[test]
    fn anthropic_urls_add_the_whole_versioned_path_once() {
        for base in ["https://api.anthropic.com", "https://api.anthropic.com/v1/"] {
            let url = Provider::Anthropic
                .endpoint_url(base, Endpoint::Messages)
                .unwrap();
            assert_eq!(url.as_str(), "https://api.anthropic.com/v1/messages");
        }
        let proxied = Provider::Anthropic
            .endpoint_url("http://127.0.0.1:9/anthropic", Endpoint::Messages)
            .unwrap();
        assert_eq!(proxied.path(), "/anthropic/v1/messages");
    }

    #[test]
    fn together_and_fireworks_are_known_to_mean_overload_by_503() {
        assert!(sends_503_for_overload("https://api.together.xyz/v1"));
        assert!(sends_503_for_overload(
            "https://API.fireworks.ai/inference/v1"
        ));
        assert!(!sends_503_for_overload("https://api.openai.com/v1"));
        assert!(!sends_503_for_overload("not a url"));
    }

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(p));
        }
        assert!("gemini".parse::<Provider>().is_err());
    }
}
