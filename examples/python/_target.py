"""What the examples share: a real server when OPENAI_API_KEY is set (and OPENAI_BASE_URL
for a compatible one), else the built-in simulator in this process, configured as the
example needs; it says which."""

import contextlib
import os

import sluice


@contextlib.contextmanager
def target(**sim_options):
    """Yields ``(client_keywords, sim_or_None)``."""
    if os.environ.get("OPENAI_API_KEY") and not os.environ.get("SLUICE_EXAMPLES_SIM"):
        yield {}, None
        return
    with sluice.Sim(**sim_options) as sim:
        print(f"(no OPENAI_API_KEY: talking to the built-in simulator at {sim.base_url})")
        yield {"base_url": sim.base_url, "api_key": "sk-simulated"}, sim
