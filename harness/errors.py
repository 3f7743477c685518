"""Errors a user can cause. The CLI prints their message as one sentence and exits non-zero."""


class VrbenchError(Exception):
    """Bad input from the user: a missing path, an unknown task, a malformed checkpoint..."""
