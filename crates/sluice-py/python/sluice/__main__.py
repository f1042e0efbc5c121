"""``python -m sluice ...``: the sluice command."""

from ._cli import main

main()
