"""Warnings that help without refusing: misspelled fields and model names ("did you mean").

Unknown fields always pass through (Kling adds fields often), but a field one or two letters away
from a documented one (``durration``, ``negative_promt``) is almost always a typo that would be
ignored silently and paid for: it gets a warning naming the field meant. A model name that is not
one klingwatch knows gets a warning too, with the nearest known name. ``klingwatch submit
--strict`` turns every warning into an error.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from klingwatch.kling.request_base import Problem

__all__ = ["closest", "model_advice", "unknown_fields"]

#: How alike a name must be to count as a typo of another (difflib's ratio).
_CUTOFF = 0.8
#: Fields Kling renamed: "the original model field has been changed to model_name"
#: (kling-image-2.1-generation.md); older clients (ComfyUI-KLingAI-API) still send ``model``.
_RENAMED = {"model": "model_name"}


def closest(name: str, known: Iterable[str], cutoff: float = _CUTOFF) -> str | None:
    """The known name ``name`` most likely misspells, or ``None``."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def _known(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    names |= {f.alias for f in model.model_fields.values() if f.alias}
    names |= set(getattr(model, "also_known", ()))
    return names


def _nested(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The request model inside an annotation (``X | None``, ``list[X]``, ``Annotated[...]``)
    and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        inner, _ = _nested(args[0])
        return inner, True
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in args:
            inner, many = _nested(arg)
            if inner is not None:
                return inner, many
    return None, False


def unknown_fields(data: Any, model: type[BaseModel], prefix: str = "") -> list[Problem]:
    """A warning for every key of ``data`` (recursively) that looks like a typo of a field
    ``model`` documents; other unknown keys pass silently."""
    if not isinstance(data, Mapping):
        return []
    known = _known(model)
    out: list[Problem] = []
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in known:
            renamed = _RENAMED.get(str(key))
            meant = renamed if renamed in known else closest(str(key), known)
            if meant is not None:
                out.append(
                    (
                        where,
                        f"is not a field Kling documents here; did you mean {meant!r}? "
                        "(sent as given)",
                    )
                )
            continue
        field = model.model_fields.get(key)
        inner, many = _nested(field.annotation) if field is not None else (None, False)
        if inner is None:
            continue
        if many and isinstance(value, list):
            for i, item in enumerate(value):
                out += unknown_fields(item, inner, f"{where}.{i}.")
        else:
            out += unknown_fields(value, inner, f"{where}.")
    return out


def model_advice(
    model: str, known: Iterable[str], what: str, *, field: str = "model_name"
) -> list[Problem]:
    """A warning when ``model`` is not one of ``known`` (with the nearest known name)."""
    names = list(known)
    if not names or model in names:
        return []
    meant = closest(model, names, cutoff=0.6)
    hint = f"did you mean {meant!r}? " if meant else f"known: {', '.join(names)}; "
    return [
        (
            field,
            f"{model!r} is not a {what} model klingwatch knows; {hint}sent as given "
            "(Kling refuses a model it does not have)",
        )
    ]
