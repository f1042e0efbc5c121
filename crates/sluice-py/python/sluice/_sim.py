"""``Sim``: the built-in OpenAI-compatible simulator, served in this process."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from . import _sluice


class Sim:
    """The simulator on a free port of 127.0.0.1, for tests and rehearsals: rate limits
    counted as OpenAI counts them (429s with ``retry-after``), latency, and faults.

    ``faults`` maps a fault to its probability: a status (``"503"``, ``"429"``, ``"500"``)
    or ``"reset"``, ``"hang"``, ``"close-mid-body"``, ``"malformed-json"``, ``"bad-request"``.

    ``with sluice.Sim(rpm=600) as sim: client = sluice.Client(base_url=sim.base_url)``
    """

    def __init__(self, *, rpm: Optional[int] = None, tpm: Optional[int] = None,
                 faults: Optional[Dict[str, float]] = None, latency: float = 0.0,
                 seed: Optional[int] = None, send_headers: bool = True,
                 max_concurrency: Optional[int] = None) -> None:
        self._native = _sluice.NativeSim(
            rpm=rpm, tpm=tpm, faults=list((faults or {}).items()), latency=latency,
            seed=seed, send_headers=send_headers, max_concurrency=max_concurrency)
        self.base_url: str = self._native.base_url
        """``http://127.0.0.1:PORT/v1``, what a client takes as its base URL."""
        self._final: Optional[Dict[str, Any]] = None

    def stats(self) -> Dict[str, Any]:
        """What it has seen: ``received``, ``by_status``, ``rate_limited``, ``faults``,
        ``peak`` windows, ``max_in_flight``, tokens... After ``close``, the last figures."""
        if self._final is not None:
            return self._final
        return json.loads(self._native.stats_json())

    def total_429(self) -> int:
        """429s it answered, of every kind."""
        return sum(self.stats()["rate_limited"].values())

    def close(self) -> None:
        """Stops serving (its statistics stay readable)."""
        if self._final is None:
            self._final = self.stats()
            self._native.close()

    def __enter__(self) -> "Sim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
