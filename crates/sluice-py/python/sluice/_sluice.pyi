"""Type stubs of the native module (its Python face is the package's other modules)."""

from typing import Any, List, Optional, Tuple

__version__: str

class RequestFailed(Exception): ...

class NativeResult:
    tag: int
    custom_id: str
    attempts: int
    latency: float
    status: Optional[int]
    body: Optional[str]
    error_code: Optional[str]
    error_message: Optional[str]
    request_id: Optional[str]
    prompt_tokens: int
    completion_tokens: int
    cost: Optional[float]
    gave_up: Optional[str]

class NativeBatch:
    async def push_many(self, items: List[Tuple[bytes, str, str, int, int]]) -> int: ...
    def close(self) -> None: ...
    def stop(self) -> None: ...
    async def next_many(self, most: int) -> List[NativeResult]: ...

class NativeClient:
    def __init__(self, base_url: str, api_key: Optional[str] = ..., *, rpm: Optional[int] = ...,
                 tpm: Optional[int] = ..., rpm_auto: bool = ..., tpm_auto: bool = ...,
                 concurrency: int = ..., concurrency_auto: bool = ..., timeout: float = ...,
                 connect_timeout: float = ..., max_attempts: int = ..., backoff_base: float = ...,
                 backoff_max: float = ..., max_retry_after: float = ..., seed: Optional[int] = ...,
                 headers: List[Tuple[str, str]] = ..., max_cost: Optional[float] = ...,
                 burst: Optional[float] = ..., limiter: str = ..., provider: str = ...,
                 itpm: Optional[int] = ..., otpm: Optional[int] = ..., itpm_auto: bool = ...,
                 otpm_auto: bool = ...) -> None: ...
    async def send(self, body: bytes, endpoint_path: str, custom_id: str,
                   priority: int = ...) -> Tuple[int, str, Optional[str], int, int, Optional[float]]: ...
    def batch(self, window: int) -> NativeBatch: ...
    def stats_json(self) -> str: ...

class NativeSim:
    base_url: str
    def __init__(self, *, rpm: Optional[int] = ..., tpm: Optional[int] = ...,
                 faults: List[Tuple[str, float]] = ..., latency: float = ...,
                 seed: Optional[int] = ..., send_headers: bool = ...,
                 max_concurrency: Optional[int] = ...) -> None: ...
    def stats_json(self) -> str: ...
    def close(self) -> None: ...

def cli_main(argv: List[str]) -> int: ...
def __getattr__(name: str) -> Any: ...
def settle_before_exit() -> None: ...
