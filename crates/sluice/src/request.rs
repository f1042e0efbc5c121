//! A request to send: its id, its endpoint and its JSON body.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

/// The endpoints sluice sends to: OpenAI's four, and Anthropic's Messages API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/v1/chat/completions`
    ChatCompletions,
    /// `/v1/completions`
    Completions,
    /// `/v1/embeddings`
    Embeddings,
    /// `/v1/responses`
    Responses,
    /// `/v1/messages` (Anthropic's Messages API)
    Messages,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 5] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Messages,
    ];

    /// The path below the base URL (which ends in `/v1`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::Messages => "/messages",
        }
    }

    /// The `url` field of a batch input line.
    pub fn batch_url(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Messages => "/v1/messages",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.batch_url())
    }
}

impl FromStr for Endpoint {
    type Err = String;

    /// Accepts the batch form (`/v1/chat/completions`) and the bare path (`/chat/completions`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = s.strip_prefix("/v1").unwrap_or(s);
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path() == path)
            .ok_or_else(|| {
                format!(
                    "unsupported url `{s}`; expected one of /v1/chat/completions, \
                     /v1/completions, /v1/embeddings, /v1/responses, /v1/messages"
                )
            })
    }
}

/// One request: a caller-chosen id (the batch `custom_id`), the endpoint and the body.
///
/// The body is kept as the exact JSON bytes it arrived as, so it is sent unchanged and
/// cloning it for a retry costs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The caller's id, echoed in the result and sent as `X-Client-Request-Id`.
    pub custom_id: String,
    /// Where it goes.
    pub endpoint: Endpoint,
    /// The JSON object to send.
    pub body: Bytes,
    /// Higher goes first; equal priorities keep their order.
    pub priority: i32,
    /// A number of the caller's, returned with the result (the CLI puts the input line
    /// number here).
    pub tag: u64,
}

impl Request {
    /// A request from a JSON value (which must be an object).
    pub fn new(custom_id: impl Into<String>, endpoint: Endpoint, body: &serde_json::Value) -> Self {
        Request {
            custom_id: custom_id.into(),
            endpoint,
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
            priority: 0,
            tag: 0,
        }
    }

    /// A request from any serializable body (bring-your-own request structs); fails when
    /// it does not serialize to a JSON object.
    pub fn json<T: serde::Serialize + ?Sized>(
        custom_id: impl Into<String>,
        endpoint: Endpoint,
        body: &T,
    ) -> serde_json::Result<Self> {
        // Straight to the bytes sent: no intermediate `Value`. Compact JSON of an object
        // starts with its brace.
        let bytes = serde_json::to_vec(body)?;
        if bytes.first() != Some(&b'{') {
            return Err(serde::ser::Error::custom(
                "a request body must be a JSON object",
            ));
        }
        Ok(Request {
            custom_id: custom_id.into(),
            endpoint,
            body: Bytes::from(bytes),
            priority: 0,
            tag: 0,
        })
    }

    /// A request from one of this crate's typed bodies ([`crate::types`]), which are
    /// structs and always serialize to an object.
    pub(crate) fn typed<T: serde::Serialize>(
        custom_id: String,
        endpoint: Endpoint,
        body: &T,
    ) -> Self {
        Self::json(custom_id.clone(), endpoint, body).unwrap_or_else(|_| Request {
            custom_id,
            endpoint,
            body: Bytes::from_static(b"{}"),
            priority: 0,
            tag: 0,
        })
    }

    /// A chat completion request.
    pub fn chat(custom_id: impl Into<String>, body: &serde_json::Value) -> Self {
        Self::new(custom_id, Endpoint::ChatCompletions, body)
    }

    /// The same request with a tag.
    pub fn with_tag(mut self, tag: u64) -> Self {
        self.tag = tag;
        self
    }

    /// The same request with a priority: a [`crate::Priority`] or any `i32` (higher
    /// goes first).
    pub fn with_priority(mut self, priority: impl Into<i32>) -> Self {
        self.priority = priority.into();
        self
    }
}

/// The `model` a request body names, read without parsing the rest.
pub(crate) fn request_model(body: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct ModelOnly<'a> {
        #[serde(borrow)]
        model: Option<crate::json_text::Text<'a>>,
    }
    serde_json::from_slice::<ModelOnly>(body)
        .ok()?
        .model
        .map(crate::json_text::Text::into_cow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_batch_urls_and_bare_paths() {
        for e in Endpoint::ALL {
            assert_eq!(e.batch_url().parse::<Endpoint>(), Ok(e));
            assert_eq!(e.path().parse::<Endpoint>(), Ok(e));
        }
        assert!("/v1/images/generations".parse::<Endpoint>().is_err());
    }
}
