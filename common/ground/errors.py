"""The one exception type for problems a user can cause and fix, and the one place that turns it into an exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A bad file, flag, config value or missing credential.

    `run.py` catches it once, prints its message as one line and exits with status 2.
    Programming errors are never wrapped in it, so they keep their traceback.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's KeyboardInterrupt is, so that everything that cleans up after Ctrl-C does so
    after SIGTERM too; exit status 143 (128 + SIGTERM's number), as a process killed by it would have."""


def exit_status(work: Callable[[], object]) -> int:
    """Runs a command's work: 0 when it returns, 2 with its one line on stderr for a UserError, 130 when the user
    interrupts, 143 for SIGTERM. The one error-to-exit-status wrapper of run.py and every `python -m bench.<name>`
    script."""
    try:
        work()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), for a one-line error."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
