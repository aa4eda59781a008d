"""The one exception a user can cause.

Every error a user can provoke (a missing dataset, a bad image, a layer that
does not fit its input, a corrupt file) is raised as ``ConvlensError`` with one
sentence that names the cause and the fix. The CLI prints that sentence and
exits with status 2; no traceback is shown.
"""


class ConvlensError(Exception):
    """A user-facing error: its message is one sentence naming cause and fix."""


EXIT_USER_ERROR = 2


class LayerError(ConvlensError):
    """A model that cannot be built, naming the layer at fault by its position (from 0).

    The explorer's model editor shows the sentence beside that layer; everyone
    else reads it as the ConvlensError it is.
    """

    def __init__(self, message: str, layer: int) -> None:
        super().__init__(message)
        self.layer = layer
