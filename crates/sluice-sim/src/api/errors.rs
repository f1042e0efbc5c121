//! An error answer: its status, words and OpenAI's type, code and param; the dialect
//! shapes the body ([`Dialect::error_body`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::dialect::Dialect;

/// An error answer, in either dialect.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code: None,
            param: None,
        }
    }

    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// A missing required field.
    pub(crate) fn missing(param: &'static str) -> Self {
        Self::invalid(format!("Missing required parameter: '{param}'."))
            .code("missing_required_parameter")
            .param(param)
    }

    /// The answer in `dialect`'s error shape.
    pub(crate) fn response(&self, dialect: Dialect) -> Response {
        let mut response = (self.status, dialect.error_body(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
