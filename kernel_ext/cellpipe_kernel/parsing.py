"""The argument parser of the magics: problems become ``UsageError``, ``-h`` returns.

argparse exits the process on ``-h`` and on a bad option; in a kernel that would kill the
kernel. :class:`MagicParser` raises IPython's ``UsageError`` (one line with the usage, no
traceback) for a problem and :class:`HelpShown` after printing the help.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from IPython.core.error import UsageError

__all__ = ["HelpShown", "MagicParser"]


class HelpShown(Exception):
    """argparse printed ``-h``'s help: there is nothing to run."""


class MagicParser(argparse.ArgumentParser):
    """An argparse parser that never exits the kernel."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        """Raise the problem as a ``UsageError`` with the usage line."""
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Return to the magic instead of calling ``sys.exit``."""
        if message:
            print(message, file=sys.stderr)
        raise HelpShown(status)
