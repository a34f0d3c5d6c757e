"""The one exception type the user sees.

A ``BCDIError`` message is a single line that says what is wrong, where, and what to do. The CLI prints it
and exits with status 2; the widgets show it as a napari notification. Anything else that escapes is a bug.
"""

from __future__ import annotations


class BCDIError(ValueError):
    """A user-facing error about bad input or an impossible request (one line, no traceback needed)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class Cancelled(Exception):
    """Raised inside long work when the user asked to stop; never an error for the user."""
