"""The one exception type for problems a user can cause and fix, and the one place that turns it into an exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


class UserError(Exception):
    """A bad file, flag, config value or missing credential.

    `run.py` catches it once, prints its message as one line and exits with status 2.
    Programming errors are never wrapped in it, so they keep their traceback.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's KeyboardInterrupt is, so that everything that cleans up after Ctrl-C does so
    after SIGTERM too; exit status 143 (128 + SIGTERM's number), as a process killed by it would have."""


def stopped(stop: KeyboardInterrupt, hint: str) -> KeyboardInterrupt:
    """The same stop (Ctrl-C's or SIGTERM's) carrying how to continue the work it stopped; the outermost work that
    knows best says it, and `exit_status` prints it as the one line of the stop."""
    return type(stop)(hint)


def stop_message(stop: KeyboardInterrupt) -> str:
    """'interrupted' (Ctrl-C) or 'terminated' (SIGTERM), then how to continue when the stopped work said."""
    word = "terminated" if isinstance(stop, Terminated) else "interrupted"
    return f"{word}: {stop}" if str(stop) else word


def exit_status(work: Callable[[], object]) -> int:
    """Runs a command's work: 0 when it returns, 2 with its one line on stderr for a UserError, 130 when the user
    interrupts, 143 for SIGTERM. The one error-to-exit-status wrapper of run.py and every `python -m bench.<name>`
    script."""
    try:
        work()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(stop_message(stop), file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    return 0


STOPPED = (130, 143)  # exit_status after Ctrl-C and after SIGTERM


def exit_process(status: int) -> NoReturn:
    """Ends the process with `status`; after a stop, at once. By then the stopped work has written and closed its
    files (each atomically) and printed its line; Python's own teardown would then wait on TensorFlow's input
    threads (a tf.data iterator's destructor joins them) and collect every object, 3-15 s on 2 busy cores, where
    a stop should take 2 s at most."""
    if status not in STOPPED:
        sys.exit(status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), for a one-line error."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
