"""What both submission paths share: the run's description on Kaggle, the refusal of an offline competition,
and the official kaggle package (credentials first, one error line for whatever Kaggle answers)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from requests import HTTPError  # the kaggle package's client raises requests' HTTPError for refusals

from common.data.sources import kaggle_credentials_present
from common.ground.errors import UserError, first_line
from common.ground.spec import COMPETITIONS, CompetitionSpec, get_spec
from common.runs import Run

NO_CREDENTIALS = (
    "no Kaggle credentials: create a token at https://www.kaggle.com/settings/api and set KAGGLE_API_TOKEN "
    "(or save it to ~/.kaggle/access_token), or run `kaggle auth login`"
)


def refuse_offline(spec: CompetitionSpec) -> None:
    """An offline competition (digits) has no Kaggle page: nothing to submit, dry or not."""
    if not spec.on_kaggle:
        on_kaggle = [name for name in COMPETITIONS if get_spec(name).on_kaggle]
        raise UserError(
            f"{spec.name} is an offline demo, not a Kaggle competition: there is nothing to submit "
            f"(submit takes {' or '.join(on_kaggle)})"
        )


def describe(run: Run, message: str | None) -> str:
    """The submission's description on Kaggle: the user's note, then the run id and its submitted models' own
    score, naming its signal."""
    submitted = run.metrics().submitted
    facts = f"run {run.run_id}, {submitted.phrase}" if submitted.accuracy is not None else f"run {run.run_id}"
    return f"{message} ({facts})" if message else facts


def authenticated_api():
    """A KaggleApi that has authenticated, or one UserError line saying what is missing.

    The kaggle package authenticates as soon as it is imported and, without credentials, prints a
    page of help and calls exit(1): we check first, then import with its output held back.
    """
    oauth_file = Path.home() / ".kaggle" / "credentials.json"  # written by `kaggle auth login`
    if not (kaggle_credentials_present() or oauth_file.is_file()):
        raise UserError(NO_CREDENTIALS)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
        except SystemExit:  # the package's own "authentication required" exit
            raise UserError(f"{NO_CREDENTIALS} (the credentials found were rejected or could not be checked)") from None
        except Exception as error:  # noqa: BLE001 - network and HTTP errors of many types all mean "cannot log in"
            raise UserError(f"Kaggle authentication failed (no network?): {error}") from None
    return api


def http_reason(error: HTTPError) -> str:
    """'HTTP 403: <Kaggle's message>' from a refusal, as far as the response says."""
    response = error.response
    try:
        message = response.json().get("message", "") if response is not None else ""
    except ValueError:
        message = ""
    code = getattr(response, "status_code", None)
    return f"HTTP {code}: {message or first_line(error)}" if code else first_line(error)


@contextlib.contextmanager
def kaggle_step(what: str) -> Iterator[None]:
    """One UserError line for anything that goes wrong while Kaggle is asked to `what` ('create dataset x/y')."""
    try:
        yield
    except UserError:
        raise
    except HTTPError as error:
        raise UserError(f"Kaggle refused to {what}: {http_reason(error)}") from None
    except Exception as error:  # noqa: BLE001 - the package raises ValueError, ConnectionError... all the user's to fix
        raise UserError(f"could not {what}: {first_line(error)}") from None


def show_call(name: str, arguments: dict[str, Any]) -> str:
    """A call of the kaggle API as written in Python: what --dry-run prints, and what is sent."""
    return f"api.{name}({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def call(api, name: str, arguments: dict[str, Any], what: str) -> Any:
    with kaggle_step(what):
        return getattr(api, name)(**arguments)
