"""Which files a succeeded task has, and where each one goes on disk.

:func:`result_files` lists a task's result files from its ``result`` JSON (videos, then images,
then audios; watermarked variants when asked). :class:`PathTemplate` names each file from a
template such as the default ``{batch}/{external_task_id}_{index}.{ext}``.

Every value put into a path is sanitized first (no ``/``, no ``..``, no control characters, no
leading dot), and the template itself may not climb out of the target folder, so neither a
template nor a hostile id can write anywhere but under the folder the user chose.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from klingwatch.errors import ConfigurationError
from klingwatch.monitor.media import MediaKind, ext_from_url
from klingwatch.store.records import TaskRecord

__all__ = [
    "DEFAULT_TEMPLATE",
    "TEMPLATE_FIELDS",
    "WATERMARK_INDEX_OFFSET",
    "PathTemplate",
    "ResultFile",
    "TemplateError",
    "result_files",
    "sanitize",
]

DEFAULT_TEMPLATE = "{batch}/{external_task_id}_{index}.{ext}"

#: The fields a template may use.
TEMPLATE_FIELDS = (
    "batch",
    "external_task_id",
    "task_id",
    "product",
    "model",
    "index",
    "kind",
    "ext",
    "variant",
)

#: A watermarked file is recorded in the ledger under its clean file's index plus this.
WATERMARK_INDEX_OFFSET = 1000

_UNSAFE = re.compile(r"[^\w.+=@,-]+")
_MAX_COMPONENT = 150


class TemplateError(ConfigurationError):
    """A file-name template that cannot be used (unknown field, escapes the folder, ...)."""


@dataclass(frozen=True, slots=True)
class ResultFile:
    """One downloadable file of a task's result."""

    kind: MediaKind
    #: Position among the task's files (videos, then images, then audios): the template's {index}.
    index: int
    url: str
    #: ``""`` for the file itself, ``"watermark"`` for its watermarked variant.
    variant: str = ""

    @property
    def ledger_index(self) -> int:
        """The key of this file's row in the ledger's downloads (unique within the task)."""
        return self.index + (WATERMARK_INDEX_OFFSET if self.variant == "watermark" else 0)

    @property
    def ext(self) -> str:
        return ext_from_url(self.url, self.kind)


def result_files(result: Mapping[str, Any] | None, *, watermark: bool = False) -> list[ResultFile]:
    """The files of a task's ``result`` JSON, in a stable order.

    Each video, image and audio with a ``url`` is one file (an audio with only a ``wav_url``
    uses that). With ``watermark=True`` each item that has a ``watermark_url`` adds a second
    file, ``variant="watermark"``, with the same index.
    """
    files: list[ResultFile] = []
    if not result:
        return files
    index = 0
    kinds: tuple[tuple[str, MediaKind], ...] = (
        ("videos", "video"),
        ("images", "image"),
        ("audios", "audio"),
    )
    for key, kind in kinds:
        items = result.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, Mapping):
                continue
            url = _url(item.get("url")) or _url(item.get("mp3_url")) or _url(item.get("wav_url"))
            if url is None:
                continue
            files.append(ResultFile(kind=kind, index=index, url=url))
            marked = _url(item.get("watermark_url"))
            if watermark and marked:
                files.append(ResultFile(kind=kind, index=index, url=marked, variant="watermark"))
            index += 1
    return files


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def sanitize(value: object) -> str:
    """``value`` as one safe path component: word characters and ``.+=@,-`` only.

    Never empty, never ``.``/``..``, never hidden (no leading dot), at most 150 characters.
    """
    text = unicodedata.normalize("NFC", "" if value is None else str(value))
    text = _UNSAFE.sub("_", text).lstrip(".")[:_MAX_COMPONENT]
    return text or "_"


class PathTemplate:
    """A checked file-name template.

    Fields: ``{batch}``, ``{external_task_id}``, ``{task_id}``, ``{product}``, ``{model}``,
    ``{index}`` (an int, so ``{index:03d}`` works), ``{kind}`` (video/image/audio), ``{ext}``
    and ``{variant}`` (empty, or ``watermark``). When the template has no ``{variant}``, a
    watermarked file gets ``_watermark`` before its extension. ``/`` in the template makes
    folders; nothing may make it leave the target folder.
    """

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        self.template = template
        self._has_variant = False
        self._check()

    def _check(self) -> None:
        text = self.template
        if not text.strip():
            raise TemplateError("the file-name template is empty")
        if text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
            raise TemplateError(f"template {text!r} is absolute; it must be relative to --dir")
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(f"template {text!r} is malformed: {exc}") from None
        known = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        skeleton = ""  # the template with every field as "F": what its literal folders are
        for literal, name, _spec, _conv in parsed:
            skeleton += literal + ("F" if name is not None else "")
            if name is None:
                continue
            if name not in TEMPLATE_FIELDS:
                raise TemplateError(f"unknown field {{{name}}} in template {text!r}; use {known}")
            self._has_variant = self._has_variant or name == "variant"
        for part in skeleton.replace("\\", "/").split("/"):
            if part in (".", ".."):
                raise TemplateError(f"template {text!r} may not use '{part}' in a path")
        # Render a sample to catch bad format specs now rather than mid-download.
        self._render(_SAMPLE_VALUES)

    def relative(self, task: TaskRecord, file: ResultFile) -> PurePosixPath:
        """The path of ``file`` of ``task`` relative to the target folder."""
        values: dict[str, Any] = {
            "batch": sanitize(task.batch),
            "external_task_id": sanitize(task.external_task_id),
            "task_id": sanitize(task.task_id or "no-task-id"),
            "product": sanitize(task.product),
            "model": sanitize(task.model or "default"),
            "index": file.index,
            "kind": file.kind,
            "ext": sanitize(file.ext),
            "variant": sanitize(file.variant) if file.variant else "",
        }
        path = self._render(values)
        if file.variant and not self._has_variant:
            name, ext = path.name, f".{values['ext']}"
            stem = name[: -len(ext)] if name.endswith(ext) and len(name) > len(ext) else name
            tail = ext if stem != name else ""
            path = path.with_name(f"{stem}_{file.variant}{tail}")
        return path

    def destination(self, root: Path, task: TaskRecord, file: ResultFile) -> Path:
        """Where ``file`` of ``task`` goes under ``root``."""
        return root.joinpath(*self.relative(task, file).parts)

    def _render(self, values: Mapping[str, Any]) -> PurePosixPath:
        try:
            text = self.template.format(**values)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise TemplateError(f"template {self.template!r} cannot be filled: {exc}") from None
        parts = [_clean_component(p) for p in text.replace("\\", "/").split("/") if p]
        if not parts:
            raise TemplateError(f"template {self.template!r} gives an empty file name")
        return PurePosixPath(*parts)

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"


def _clean_component(part: str) -> str:
    # Literal text of the template is the user's own; keep it, minus what a file name cannot hold.
    cleaned = "".join(
        "_" if ch == "\x00" or unicodedata.category(ch) == "Cc" else ch for ch in part
    )
    if cleaned in (".", ".."):
        return "_"
    return cleaned[:255]


_SAMPLE_VALUES: dict[str, Any] = {
    "batch": "batch",
    "external_task_id": "ext",
    "task_id": "123",
    "product": "text2video",
    "model": "kling-v2-6",
    "index": 0,
    "kind": "video",
    "ext": "mp4",
    "variant": "",
}
