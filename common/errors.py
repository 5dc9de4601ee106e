"""The one exception type for problems a user can cause and fix."""


class UserError(Exception):
    """A bad file, flag, config value or missing credential.

    `run.py` catches it once, prints its message as one line and exits with status 2.
    Programming errors are never wrapped in it, so they keep their traceback.
    """
