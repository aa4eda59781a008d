"""The one exception a user can cause.

Every error a user can provoke (a missing dataset, a bad image, a layer that
does not fit its input, a corrupt file) is raised as ``ConvlensError`` with one
sentence that names the cause and the fix. The CLI prints that sentence and
exits with status 2; no traceback is shown.
"""


class ConvlensError(Exception):
    """A user-facing error: its message is one sentence naming cause and fix."""


EXIT_USER_ERROR = 2
