"""The one error type a user can cause: a missing path, an unknown task, a malformed file.

It lives in the bottom layer so that tasks, the harness and the trainers all raise it while
importing only downwards. The command line prints its message as one sentence and exits 2.
"""


class VrbenchError(Exception):
    """Bad input from the user: a missing path, an unknown task, a malformed checkpoint..."""
