"""Library start-up logs kept off the user's terminal: on every backend, in Dask workers, in every process that
loads Keras.

TensorFlow writes its start-up lines (`oneDNN custom operations are on`, `Could not find cuda drivers`) from C++
while its libraries load, before its logging reads TF_CPP_MIN_LOG_LEVEL (absl's "before InitializeLog()" lines):
only file descriptor 2 silenced while it loads keeps them off (`load_keras_quietly`). TF_CPP_MIN_LOG_LEVEL=3
then keeps what TensorFlow and XLA write from C++ afterwards off too (`failed call to cuInit` on a machine without
a GPU), set where the product starts (`quiet_environment`), before any of them loads. Keras loads TensorFlow on
every backend where it is installed (keras.utils.set_random_seed seeds it too), so JAX runs load it
here as well, instead of later, aloud. Errors still reach the user: they raise in Python.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3"}  # C++ logs of TensorFlow and XLA: fatal ones only


def quiet_environment() -> None:
    """QUIET_ENVIRONMENT into this process's environment (what the user set stays), before any library loads;
    processes started from here (Dask's local workers) inherit it."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a while: C++ libraries write there directly, past sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_keras_quietly() -> None:
    """Imports Keras, and TensorFlow where it is installed, with file descriptor 2 silenced; Keras' import error
    still raises (and is shown) once it is back. A TensorFlow that fails to import is left out, as Keras itself
    leaves it out on the other backends (`keras.src.utils.module_utils.tensorflow.available`)."""
    quiet_environment()
    with quiet_stderr():
        import keras  # noqa: F401 - the import itself is what is silenced

        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass
