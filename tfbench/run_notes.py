"""A run's tags and note, kept in its run directory as `notes.json`.

Without a UI and without TensorFlow. The user's own words about a run (`baseline`, "lr too high")
live beside the run they describe, so they travel with it when the folder is copied; the file is
written atomically and a damaged one reads as empty rather than hiding the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tfbench.atomic import write_bytes
from tfbench.errors import UserError

NOTES_FILE = "notes.json"
TAG = re.compile(r"^[\w.+/-]+$")


@dataclass
class RunNotes:
    """A run's tags (in the order they were added, no repeats) and its note."""

    tags: list[str] = field(default_factory=list)
    note: str = ""


def read_notes(run_dir: str | Path) -> RunNotes:
    """The run's tags and note (none when it has no `notes.json` or the file cannot be read)."""
    try:
        data = json.loads((Path(run_dir) / NOTES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunNotes()
    if not isinstance(data, dict):
        return RunNotes()
    tags = data.get("tags")
    note = data.get("note")
    return RunNotes(
        tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        note=note if isinstance(note, str) else "",
    )


def write_notes(run_dir: str | Path, notes: RunNotes) -> Path:
    """Write the run's `notes.json` atomically."""
    text = json.dumps({"tags": notes.tags, "note": notes.note}, indent=2, ensure_ascii=False) + "\n"
    return write_bytes(Path(run_dir) / NOTES_FILE, text.encode("utf-8"))


def checked_tags(tags: list[str]) -> list[str]:
    """Tags as given, each a word of letters, digits and `_ . + / -`.

    Raises:
        UserError: naming the first tag that is not such a word.
    """
    for tag in tags:
        if not TAG.match(tag):
            raise UserError(
                "a tag is one word of letters, digits and _ . + / -", repr(tag), "for words with spaces use a note"
            )
    return tags


def tag_run(run_dir: str | Path, add: Iterable[str] = (), remove: Iterable[str] = ()) -> RunNotes:
    """Add and remove tags of a run; returns its notes as written.

    Raises:
        UserError: a tag that is not one word.
    """
    notes = read_notes(run_dir)
    for tag in checked_tags(list(add)):
        if tag not in notes.tags:
            notes.tags.append(tag)
    removed = set(remove)
    notes.tags = [t for t in notes.tags if t not in removed]
    write_notes(run_dir, notes)
    return notes


def set_note(run_dir: str | Path, note: str) -> RunNotes:
    """Replace a run's note ("" clears it); returns its notes as written."""
    notes = read_notes(run_dir)
    notes.note = note.strip()
    write_notes(run_dir, notes)
    return notes


def set_tags(run_dir: str | Path, tags: Iterable[str]) -> RunNotes:
    """Replace a run's tags (repeats dropped); returns its notes as written.

    Raises:
        UserError: a tag that is not one word.
    """
    notes = read_notes(run_dir)
    notes.tags = list(dict.fromkeys(checked_tags(list(tags))))
    write_notes(run_dir, notes)
    return notes


def toggle_tag(run_dir: str | Path, tag: str) -> RunNotes:
    """Add the tag when the run lacks it, else remove it (the Runs screen's key)."""
    if tag in read_notes(run_dir).tags:
        return tag_run(run_dir, remove=[tag])
    return tag_run(run_dir, add=[tag])
