"""The ``sluice`` command installed by the package: the same CLI as the Rust binary."""

import sys

from . import _sluice


def main() -> None:
    """Runs ``sluice`` with this process's arguments and exits with its code."""
    sys.exit(_sluice.cli_main(["sluice", *sys.argv[1:]]))
