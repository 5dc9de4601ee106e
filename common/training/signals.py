"""Ctrl-C (SIGINT) and SIGTERM while a run folder is open: both stop the run within a batch, the same way.

Python's own Ctrl-C handler raises KeyboardInterrupt at whatever bytecode the main thread runs next. While Keras
trains, that is often a garbage-collection callback (JAX registers one, and TensorFlow imports JAX where it is
installed) or an object's `__del__`, where Python can only print "Exception ignored in ..." and carry on: the
Ctrl-C is lost, and the run goes on. The handler here raises at once too, but keeps the signal, and
`StopAtBatchEnd` (in a unit's fit, its validation and its predict) raises it again at the next batch end; a
lost raise is not printed. A unit cut short is trained again on resume: its unit.json is written last.

SIGTERM's default ends the process there and then, without the line that says how to continue; here it raises
`Terminated`, a KeyboardInterrupt, and takes Ctrl-C's path (exit status 143 instead of 130). The handlers are
installed even where SIGINT was ignored: a run started in the background by a script (`python run.py ... &`)
inherits SIGINT ignored, and `kill -INT` should still stop it.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import keras

from common.ground.errors import Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class PendingStop:
    """The stop signal this process received; kept until the run it stops has ended (see `raise_if_received`)."""

    def __init__(self) -> None:
        self.number: int | None = None
        self.owner = 0  # the process whose run it stops

    def receive(self, number: int, frame) -> None:
        if os.getpid() != self.owner:  # a forked worker (distort's batches): ended as by default, without a traceback
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        self.number = self.number or number
        self.raise_if_received()

    def raise_if_received(self) -> None:
        if self.number == signal.SIGTERM:
            raise Terminated()
        if self.number is not None:
            raise KeyboardInterrupt()

    def unraisable(self, hook, details) -> None:
        """A stop raised where Python cannot raise is raised again at the next batch end: not shown meanwhile."""
        if not (self.number and isinstance(details.exc_value, KeyboardInterrupt)):
            hook(details)


PENDING = PendingStop()


@contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """Inside: SIGINT raises KeyboardInterrupt and SIGTERM raises Terminated, at once and again at every batch end
    of the Keras loops given `StopAtBatchEnd`; the previous handlers come back on the way out. Handlers belong to
    the main thread: from another thread (a run started from a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    PENDING.number, PENDING.owner, hook = None, os.getpid(), sys.unraisablehook
    previous = {number: signal.signal(number, PENDING.receive) for number in SIGNALS}
    sys.unraisablehook = functools.partial(PENDING.unraisable, hook)
    try:
        yield
    finally:
        PENDING.number, sys.unraisablehook = None, hook
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


def run_is_stopping() -> bool:
    """Whether a stop signal came for the run now open (its raise may be under way, or lost)."""
    return PENDING.number is not None


class StopAtBatchEnd(keras.callbacks.Callback):
    """Raises, at the end of every batch of the Keras loops it is given to, a stop signal whose first raise
    was lost."""

    def raise_if_received(self, batch, logs=None) -> None:
        PENDING.raise_if_received()

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = raise_if_received
