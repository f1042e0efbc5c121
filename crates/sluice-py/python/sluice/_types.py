"""What calls return: ``Result`` (one item of a batch), ``Stats`` and ``Priority``."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from ._errors import SluiceError


class Priority(enum.IntEnum):
    """How soon a request goes against others waiting: higher first, first come first
    served within a level. Any int works too."""

    LOW = -10
    NORMAL = 0
    HIGH = 10


@dataclass
class Result:
    """One item's outcome, beside its input: ``response`` (the parsed answer) or ``error``
    (a typed exception, not raised), never both."""

    index: int
    """The item's position in the input."""
    input: Any
    """The item as given (a prompt or a request body)."""
    custom_id: str
    error: Optional[SluiceError]
    attempts: int
    latency: float
    """Seconds of the last attempt."""
    status: Optional[int]
    request_id: Optional[str]
    prompt_tokens: int
    completion_tokens: int
    cost: Optional[float]
    _body: Optional[str] = field(default=None, repr=False)
    _parsed: Any = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether it succeeded."""
        return self.error is None

    @property
    def response(self) -> Optional[Dict[str, Any]]:
        """The answer as a dict (parsed on first access), or None for a failure."""
        if self.error is not None or self._body is None:
            return None
        if self._parsed is None:
            self._parsed = json.loads(self._body)
        return self._parsed

    @property
    def text(self) -> Optional[str]:
        """The answer's text: chat ``message.content``, completions ``text``, responses'
        output text; None for embeddings and failures."""
        r = self.response
        if not r:
            return None
        return answer_text(r)


def answer_text(r: Dict[str, Any]) -> Optional[str]:
    """The text of a chat, completions, responses or Anthropic Messages answer."""
    choices = r.get("choices")
    if choices:
        first = choices[0]
        message = first.get("message")
        if isinstance(message, dict):
            return message.get("content")
        return first.get("text")
    output = r.get("output")
    if isinstance(output, list):
        parts = [
            p.get("text", "")
            for item in output if isinstance(item, dict)
            for p in item.get("content", []) or [] if isinstance(p, dict) and p.get("type") == "output_text"
        ]
        return "".join(parts)
    content = r.get("content")
    if isinstance(content, list):
        # Anthropic's Messages API: text blocks.
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return None


@dataclass(frozen=True)
class Stats:
    """Everything sent through a client so far."""

    requests: int
    """Requests finished, either way."""
    successes: int
    failures: int
    attempts: int
    retries: int
    rate_limited: int
    """429s met (and waited out) on the way."""
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: Optional[float]
    """Dollars at the built-in prices, None when no model had a price."""
    success_rate: float
    latency_mean: float
    latency_p50: float
    latency_p90: float
    latency_p99: float
    failed_by_kind: Dict[str, int]

    @property
    def avg_latency(self) -> float:
        """The mean latency of successful attempts, in seconds."""
        return self.latency_mean
