"""The one error type for a user's mistake.

Anything the user can fix (a bad preset, an impossible layer stack, an unknown dataset, a path
that cannot be written) raises `UserError` with a location such as `model.layers[2].units`. The
CLI prints it as one `error:` line and exits 2; the TUI shows it beside the field it names.
Everything else is a bug or a failed run, and is reported as such.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix, with where it is and, when known, what to do.

    Args:
        message: what is wrong, in one sentence.
        location: where: a dotted Experiment path (`train.optimizer.learning_rate`), a file
            (`presets/x.toml`), or a file and a path together.
        hint: what to do about it (for example the closest valid names).
    """

    def __init__(self, message: str, location: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def at(self, prefix: str) -> UserError:
        """Return the same error located under `prefix` (a file name or an outer path)."""
        if not prefix:
            return self
        loc = f"{prefix}: {self.location}" if self.location else prefix
        return UserError(self.message, loc, self.hint)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


def close_matches(word: str, choices, n: int = 3) -> str | None:
    """A hint naming the valid choices closest to a misspelt `word`, or None."""
    import difflib

    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    if not found:
        return None
    return "did you mean " + ", ".join(repr(lowered[f]) for f in found) + "?"
