"""User-facing errors and exit codes (one place, so every command agrees)."""
from __future__ import annotations

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: the report so far is printed, marked partial
EXIT_REGRESSION = 1  # design.md: "the answer is bad": a check that regressed, or a trace that did not run


class UserError(Exception):
    """Bad input: reported as one clear message, exit code 2, never a traceback.

    ``where`` is ``file:line:column`` (or as much of it as is known).
    """

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
