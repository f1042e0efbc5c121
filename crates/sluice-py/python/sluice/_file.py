"""``run_file``: the durable, resumable file run of ``sluice run``, from Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import List, Optional, Union


def run_file(
    input: Union[str, "os.PathLike[str]"],
    output: Union[str, "os.PathLike[str]"],
    *,
    rpm: Optional[int] = None,
    tpm: Optional[int] = None,
    concurrency: Optional[int] = None,
    model: Optional[str] = None,
    base_url: Optional[str] = None,
    max_cost: Optional[float] = None,
    progress: bool = False,
    restart: bool = False,
    retry_failed: bool = False,
    extra_args: Optional[List[str]] = None,
) -> int:
    """Runs ``sluice run INPUT -o OUTPUT`` with the CLI's guarantees (exactly one record per
    input line, resumed where it stopped when run again) and returns its exit code (0: all
    done; see the README's table). It runs in a child process, so a notebook's Ctrl-C stops
    it gracefully (what is in flight is written) and the notebook keeps its own signals.
    ``progress=True`` prints a progress line every few seconds."""
    argv = [sys.executable, "-m", "sluice", "run", os.fspath(input), "-o", os.fspath(output)]
    for flag, value in (("--rpm", rpm), ("--tpm", tpm), ("--concurrency", concurrency),
                        ("--model", model), ("--base-url", base_url), ("--max-cost", max_cost)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--progress", "plain" if progress else "off"]
    if restart:
        argv.append("--restart")
    if retry_failed:
        argv.append("--retry-failed")
    argv += extra_args or []
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
