"""Source options (`[data.options]`), validated per source kind with errors at `data.options.NAME`.

Every kind accepts the common preprocessing options below; each source module subclasses
`SourceOptions` with its own fields, so a misspelt option is an error, not a silent no-op.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tfbench.errors import UserError, close_matches

T = TypeVar("T", bound="SourceOptions")


class SourceOptions(BaseModel):
    """Options every source accepts: feature scaling, normalising and resizing, target scaling."""

    model_config = ConfigDict(extra="forbid")

    scale: float | None = Field(
        None, description="Multiply the features by this (e.g. 0.00392 for 0-255 pixels); default none."
    )
    resize: list[int] | None = Field(None, min_length=2, max_length=2, description="Resize images to [height, width].")
    normalize: bool = Field(
        False, description="Standardise features with the training split's per-feature mean and deviation."
    )
    label_scale: float | None = Field(
        None, description="Multiply regression targets by this (e.g. 1e-5 for prices in dollars)."
    )
    parallel_calls: int | None = Field(
        None, ge=1, description="Parallel map calls for decoding/preprocessing; default AUTOTUNE."
    )


def parse_options(cls: type[T], options: dict[str, Any]) -> T:
    """Validate `spec.options` against a source's options model.

    Raises:
        UserError: at `data.options.NAME`, naming the valid options for an unknown one.
    """
    try:
        return cls.model_validate(options or {})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = ".".join(str(p) for p in err["loc"]) or "?"
        location = f"data.options.{name}"
        fields = list(cls.model_fields)
        if err["type"] == "extra_forbidden":
            hint = close_matches(str(err["loc"][0]), fields) or f"valid options: {', '.join(fields)}"
            raise UserError("unknown option for this source", location, hint) from None
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        raise UserError(f"{message}, got {err.get('input')!r}", location) from None
