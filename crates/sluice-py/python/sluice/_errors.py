"""Typed exceptions, named as the openai SDK names them, mapped from the engine's error
kinds. Each carries the status, the engine's code, the message and the request id."""

from __future__ import annotations

from typing import Optional


class SluiceError(Exception):
    """A request that failed for good (after the retries the policy allows).

    Attributes: ``code`` (the engine's error kind, e.g. ``"rate_limited"``), ``status``
    (the last HTTP status, if an answer came), ``message``, ``request_id`` (the server's),
    ``body`` (the last error answer's text), ``gave_up`` (why retrying stopped:
    ``"attempts_exhausted"``, ``"rate_limited_too_long"``, ``"retry_after_too_long"``),
    ``attempts``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        body: Optional[str] = None,
        gave_up: Optional[str] = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.status_code = status  # the openai SDK's name
        self.request_id = request_id
        self.body = body
        self.gave_up = gave_up
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class APIError(SluiceError):
    """The server answered with an error."""


class APIStatusError(APIError):
    """An error answer with a status."""


class RateLimitError(APIStatusError):
    """429: refused as rate-limited for longer than the policy waits."""


class InsufficientQuotaError(RateLimitError):
    """429 insufficient_quota: the account is out of credit; retrying does not help."""


class AuthenticationError(APIStatusError):
    """401/403: the key is refused."""


class PermissionDeniedError(AuthenticationError):
    """403."""


class BadRequestError(APIStatusError):
    """400/422: the request is invalid; retrying does not help."""


class NotFoundError(APIStatusError):
    """404: wrong URL or model."""


class InternalServerError(APIStatusError):
    """5xx after the retries the policy allows."""


class PaymentRequiredError(APIStatusError):
    """402: out of credits."""


class APIConnectionError(SluiceError):
    """No answer: the connection failed or broke."""


class APITimeoutError(APIConnectionError):
    """No whole answer within the timeout."""


class InvalidInputError(SluiceError):
    """The input itself cannot be sent (too large for the budget, a duplicate id...)."""


class SpendCapError(SluiceError):
    """The spend cap stopped admission."""


class CancelledError(SluiceError):
    """The request was not finished: its batch stopped."""


_BY_CODE = {
    "rate_limited": RateLimitError,
    "insufficient_quota": InsufficientQuotaError,
    "server_error": InternalServerError,
    "invalid_request": BadRequestError,
    "authentication_error": AuthenticationError,
    "payment_required": PaymentRequiredError,
    "not_found": NotFoundError,
    "redirect": APIStatusError,
    "response_too_large": APIError,
    "connection_error": APIConnectionError,
    "timeout": APITimeoutError,
    "transport_error": APIConnectionError,
    "malformed_response": APIError,
    "request_too_large": InvalidInputError,
    "invalid_input": InvalidInputError,
    "duplicate_custom_id": InvalidInputError,
    "cancelled": CancelledError,
    "spend_cap": SpendCapError,
}


def error_for(
    code: str,
    status: Optional[int],
    message: str,
    request_id: Optional[str] = None,
    body: Optional[str] = None,
    gave_up: Optional[str] = None,
    attempts: int = 0,
) -> SluiceError:
    """The typed exception for an engine error ``code``."""
    cls = _BY_CODE.get(code, SluiceError)
    if cls is AuthenticationError and status == 403:
        cls = PermissionDeniedError
    return cls(message, code=code, status=status, request_id=request_id, body=body,
               gave_up=gave_up, attempts=attempts)
