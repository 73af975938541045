"""Problem records and the exception that carries them.

Kept apart from the validator so that callers (the REST server, the CLI,
the pilot) can catch ``ConfigError`` without importing jsonschema.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def format_path(parts: Iterable[str | int]) -> str:
    """Render a JSON path the way IceProd does: ``config['tasks'][0]['name']``.

    ``repr`` quotes strings and leaves indexes bare, which is exactly
    IceProd's ``''.join(f'[{p!r}]' for p in e.path)``.
    """
    return "config" + "".join(f"[{part!r}]" for part in parts)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config, located by its JSON path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"Validation error in {self.path}: {self.message}"




@dataclass(frozen=True)
class ConfigWarning(ConfigProblem):
    """Something changed in a config on its way in (a key dropped by the 3.2 conversion)."""

    def __str__(self) -> str:
        return f"Warning: {self.path}: {self.message}"


class ConfigError(ValueError):
    """A config cannot be used; ``problems`` lists why (at least one).

    ``str()`` is the first problem's IceProd-format line when there is one
    problem, so code written against IceProd's ``ValidationError`` text keeps
    working; with several problems every line is shown.
    """

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one ConfigProblem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, path: str, message: str) -> ConfigError:
        """Shorthand for an error with a single problem."""
        return cls([ConfigProblem(path, message)])
