"""Problem records of the macro language: one :class:`Diagnostic` per phrase
that could not be resolved, and :class:`MacroError` for strict mode."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One phrase that stayed literal, with where it was and why.

    ``path`` is IceProd-style (``config['tasks'][0]['name']``) so that the
    message points at the config entry a user has to edit.
    """

    path: str
    phrase: str
    message: str

    def __str__(self) -> str:
        where = self.path or "value"
        return f"{where}: {self.message} ({self.phrase})"


class MacroError(ValueError):
    """Raised by strict expansion when at least one phrase failed.

    A ``ValueError`` so that callers validating user input (submit, edit
    config) can turn it into a 4xx like any other bad value.
    """

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics) or "macro error")
