"""Reading a batch file into validated task intents.

A batch file is one of:

* **JSONL** (``.jsonl``/``.ndjson``/``.json``, or content whose first line starts with ``{``): one
  request object per line, with optional ``product`` and ``external_task_id`` keys; a file that
  is one JSON array of such objects is read too (each item's line is where it starts);
* **CSV** (``.csv``, or a first line that is a header such as ``prompt,duration,mode``): a header
  row of request fields (dotted names such as ``settings.duration`` nest); cells are parsed
  sensibly: numbers become numbers, ``true``/``false`` booleans, a cell starting with ``{`` or
  ``[`` is JSON, an empty cell is "not given", and text fields (``prompt``, ...) stay text;
* **plain text** (anything else): one prompt per line; blank lines and ``#`` comments are skipped.

``-`` reads standard input. ``--set KEY=VALUE`` defaults (:func:`parse_assignments`) apply to every
line; a line's own values win. A local file named in an image field (``image``, ``image_tail``,
``contents[].url`` of a first frame, ...) is read, relative to the batch file's folder, and sent
as raw Base64. Every line is then validated with its product's rules
(:meth:`klingwatch.kling.products.Product.check`); every problem is reported as
``FILE:LINE: what is wrong and how to fix it`` (:class:`LineProblem`), and every warning (a
misspelled field, an unknown model, a combination a page calls unsupported) the same way in
:attr:`BatchFile.warnings`; with ``strict`` (``submit --strict``) warnings count as problems.

Each line gets an ``external_task_id``: its own, else one derived from the batch, the product, the
canonical JSON of the validated request and the occurrence index of identical content
(:func:`derive_external_id`). Reading the same file again therefore yields the same ids, so queueing
it twice adds nothing, while two identical lines stay two tasks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from klingwatch.errors import KlingwatchError
from klingwatch.kling.errors import RequestValidationError
from klingwatch.kling.inputs import resolve_local_images
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.products import Product, get_product
from klingwatch.store import NewTask

__all__ = [
    "DEFAULT_PRODUCT",
    "BatchFile",
    "FileFormat",
    "IntakeError",
    "IntakeLine",
    "LineProblem",
    "batch_name_for",
    "canonical_json",
    "derive_external_id",
    "detect_format",
    "parse_assignments",
    "read_batch",
    "read_requests",
    "slug",
    "to_new_task",
]

logger = logging.getLogger(__name__)

#: The product a line runs on when neither the line nor ``--product`` names one.
DEFAULT_PRODUCT = "text2video"

#: Longest external_task_id accepted from a file (leaves room for retry suffixes ``-r12``).
MAX_EXTERNAL_ID = 96

#: Keys that are routing, not request body.
_ROUTING = ("product", "external_task_id")

#: Fields whose values stay text even when they look like numbers ("1984" is a fine prompt).
_TEXT_FIELDS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "text",
        "product",
        "external_task_id",
        "model_name",
        "video_id",
        "video_url",
        "voice_id",
        "voice_language",
        "effect_scene",
        "image",
        "image_tail",
        "human_image",
        "cloth_image",
        "url",
        "aspect_ratio",
    }
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
_HEADER = re.compile(r"^\ufeff?\s*[A-Za-z_][\w.]*\s*(,\s*[A-Za-z_][\w.]*\s*)*$")


class FileFormat(StrEnum):
    """How a batch file is read."""

    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    TEXT = "text"


class IntakeError(KlingwatchError):
    """A batch file that cannot be queued; the message lists every ``FILE:LINE:`` problem."""

    def __init__(self, message: str, problems: Sequence[LineProblem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class LineProblem:
    """One bad line: ``FILE:LINE: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class IntakeLine:
    """One valid line of a batch file, ready to be queued."""

    file: str
    line: int
    product: str
    #: the validated body (what the product's rules normalised), without routing fields
    request: dict[str, Any]
    external_task_id: str
    #: True when the file gave the id; False when it was derived
    explicit_id: bool
    family: str
    slot_cost: int
    model: str | None
    mode: str | None
    duration: str | None

    @property
    def source_line(self) -> str:
        """``FILE:LINE``, kept on the ledger row."""
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class BatchFile:
    """What :func:`read_batch` found: the valid lines and every problem."""

    file: str
    batch: str
    format: FileFormat
    lines: list[IntakeLine] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    #: what is worth a look but Kling would accept (``FILE:LINE: warning: ...``)
    warnings: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def slots_needed(self) -> dict[str, int]:
        """Concurrency slots per pack family if every line ran at once."""
        out: dict[str, int] = {}
        for item in self.lines:
            out[item.family] = out.get(item.family, 0) + item.slot_cost
        return out

    def raise_for_problems(self, *, strict: bool = False) -> None:
        """Raise :class:`IntakeError` listing every problem, if there is any; with ``strict``,
        warnings are problems too (nothing is queued)."""
        if strict and self.warnings:
            _refuse(
                self.warnings,
                f"warning{{s}} in {self.file} and --strict is set; nothing was queued (fix them, "
                "or drop --strict to send as written)",
            )
        if self.problems:
            _refuse(
                self.problems,
                f"invalid line{{s}} in {self.file}; nothing was queued (fix them, or pass "
                "--skip-invalid to queue only the valid lines)",
            )


def _refuse(items: list[LineProblem], what: str) -> None:
    n = len(items)
    shown = "\n".join(str(p) for p in items)
    # "{s}" is the plural's s; not str.format, which a file name with braces would break
    raise IntakeError(f"{n} {what.replace('{s}', 's' if n != 1 else '')}:\n{shown}", items)


# -- names and ids ------------------------------------------------------------------------------
def slug(text: str, *, limit: int = 24) -> str:
    """A lowercase ``[a-z0-9-]`` form of ``text`` (``"Spring Ads v2"`` -> ``"spring-ads-v2"``)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:limit].strip("-") or "batch"


def batch_name_for(file: str) -> str:
    """The default batch name: the file's stem (``prompts.jsonl`` -> ``prompts``)."""
    if file == "-":
        return "stdin"
    return Path(file).stem or "batch"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal requests give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_external_id(
    batch: str, product: str, request: Mapping[str, Any], occurrence: int = 0
) -> str:
    """The external_task_id of a line that gave none: ``kw-<batch slug>-<hash12>``.

    The hash covers the batch, the product, the canonical request and ``occurrence`` (how many
    identical lines came before this one), so the same file read twice gives the same ids and two
    identical lines give two.
    """
    material = "\x1f".join((batch, product, canonical_json(request), str(occurrence)))
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]
    return f"kw-{slug(batch)}-{digest}"


# -- values ---------------------------------------------------------------------------------------
def _is_text_field(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in _TEXT_FIELDS or last.endswith(("prompt", "_url", "_id"))


def _scalar(key: str, raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (and the field is not text), else the string."""
    if _is_text_field(key) and not raw.lstrip().startswith(("{", "[")):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _nest(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in ``target``, creating the objects on the way."""
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested objects merge key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["mode=pro", "settings.duration=5"]`` -> ``{"mode": "pro", "settings": {"duration": 5}}``.

    Raises :class:`IntakeError` for an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise IntakeError(
                f"--set {item!r}: expected KEY=VALUE (e.g. --set mode=pro or "
                "--set settings.duration=5)"
            )
        _nest(out, key, _scalar(key, raw))
    return out


# -- formats --------------------------------------------------------------------------------------
def detect_format(file: str, text: str) -> FileFormat:
    """By extension (``.jsonl``/``.ndjson``/``.json``, ``.csv``, ``.txt``), else by content
    (a ``.json`` file or content starting with ``[`` is a JSON array)."""
    suffix = Path(file).suffix.lower() if file != "-" else ""
    is_array = text.lstrip("\ufeff \t\r\n").startswith("[")
    if suffix in (".jsonl", ".ndjson"):
        return FileFormat.JSONL
    if suffix == ".json":
        return FileFormat.JSON if is_array else FileFormat.JSONL
    if suffix == ".csv":
        return FileFormat.CSV
    if suffix in (".txt", ".text"):
        return FileFormat.TEXT
    if is_array:
        return FileFormat.JSON
    for line in text.splitlines():
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("{"):
            return FileFormat.JSONL
        # A header row needs a comma and a field name klingwatch knows ("prompt", ...).
        names = {n.strip() for n in stripped.split(",")}
        if _HEADER.match(stripped) and "," in stripped and names & {"prompt", "image", "video_id"}:
            return FileFormat.CSV
        return FileFormat.TEXT
    return FileFormat.TEXT


_Raw = tuple[int, dict[str, Any] | None, str | None]  # (line, object, problem)


def _jsonl_rows(text: str) -> Iterator[_Raw]:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith("#"):
            continue
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            where = f" at column {exc.colno}" if hasattr(exc, "colno") else ""
            msg = exc.msg if hasattr(exc, "msg") else str(exc)
            yield (
                number,
                None,
                f"not valid JSON ({msg}{where}); each line must be one JSON object such as "
                '{"prompt": "a red fox running"}',
            )
            continue
        if not isinstance(value, dict):
            yield (
                number,
                None,
                f'expected a JSON object such as {{"prompt": "..."}}, got a {_json_type(value)}',
            )
            continue
        yield number, value, None


_BETWEEN_ITEMS = re.compile(r"[\s,]*")


def _json_array_rows(text: str) -> Iterator[_Raw]:
    """A JSON array of request objects; each item's line is where it starts."""
    body = text.lstrip("\ufeff")
    try:
        items = json.loads(body)
    except ValueError as exc:
        line, col, msg = (
            getattr(exc, "lineno", 1),
            getattr(exc, "colno", 0),
            getattr(exc, "msg", exc),
        )
        yield (
            line,
            None,
            f"not valid JSON ({msg} at column {col}); the file must be one JSON array of "
            'request objects such as [{"prompt": "a red fox running"}]',
        )
        return
    if not isinstance(items, list):
        yield 1, None, f"expected a JSON array of request objects, got a {_json_type(items)}"
        return
    decoder = json.JSONDecoder()
    pos = body.index("[") + 1
    for _ in items:
        pos = _BETWEEN_ITEMS.match(body, pos).end()  # type: ignore[union-attr]
        value, end = decoder.raw_decode(body, pos)
        line = body.count("\n", 0, pos) + 1
        if isinstance(value, dict):
            yield line, value, None
        else:
            yield (
                line,
                None,
                f'expected a JSON object such as {{"prompt": "..."}}, got a {_json_type(value)}',
            )
        pos = end


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def _cell(key: str, raw: str) -> Any:
    """A CSV cell as a value (see the module docstring)."""
    text = raw.strip()
    if text.startswith(("{", "[")):
        return json.loads(text)  # ValueError is reported by the caller with the column
    if _is_text_field(key):
        return raw
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return raw


def _csv_rows(text: str) -> Iterator[_Raw]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    header_line = 0
    previous = 0
    for cells in reader:
        start = previous + 1
        previous = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            if cells[0].strip().startswith("#"):
                continue
            header = [c.strip() for c in cells]
            header_line = start
            bad = [h for h in header if not h or any(not p for p in h.split("."))]
            if bad or len(set(header)) != len(header):
                dupes = sorted({h for h in header if header.count(h) > 1})
                what = f"repeated column {', '.join(dupes)}" if dupes else "an empty column name"
                yield start, None, f"the header row has {what}; name every column once"
                return
            continue
        if cells[0].lstrip().startswith("#") and len(cells) == 1:
            continue
        if len(cells) > len(header):
            yield (
                start,
                None,
                f"{len(cells)} cells but the header (line {header_line}) has {len(header)} "
                "columns; quote cells that contain commas",
            )
            continue
        row: dict[str, Any] = {}
        problem = None
        for key, raw in zip(header, cells, strict=False):
            if not raw.strip():
                continue  # an empty cell is "not given": defaults apply
            try:
                value = _cell(key, raw)
            except ValueError as exc:
                problem = f"column {key}: not valid JSON ({exc}); fix the cell or quote it as text"
                break
            _nest(row, key, value)
        yield start, (None if problem else row), problem


def _text_rows(text: str) -> Iterator[_Raw]:
    for number, line in enumerate(text.splitlines(), start=1):
        prompt = line.strip().lstrip("\ufeff")
        if not prompt or prompt.startswith("#"):
            continue
        yield number, {"prompt": prompt}, None


_READERS = {
    FileFormat.JSONL: _jsonl_rows,
    FileFormat.JSON: _json_array_rows,
    FileFormat.CSV: _csv_rows,
    FileFormat.TEXT: _text_rows,
}


# -- reading a batch ------------------------------------------------------------------------------
def _read_text(file: str, stdin: TextIO | None) -> str:
    if file == "-":
        return (stdin or sys.stdin).read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IntakeError(f"{file}: no such file; check the path") from None
    except IsADirectoryError:
        raise IntakeError(f"{file}: is a directory; give a .jsonl, .csv or .txt file") from None
    except UnicodeDecodeError as exc:
        raise IntakeError(f"{file}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise IntakeError(f"{file}: cannot read it ({exc.strerror})") from None


def _check_explicit_id(value: Any) -> str | None:
    """A problem with a file-given external_task_id, or ``None`` if it is fine."""
    if not isinstance(value, str) or not value.strip():
        return "external_task_id must be a non-empty string; remove it to let klingwatch derive one"
    if len(value) > MAX_EXTERNAL_ID:
        return f"external_task_id is {len(value)} characters; keep it to {MAX_EXTERNAL_ID}"
    if not _SAFE_ID.match(value):
        return (
            f"external_task_id {value!r} may use only letters, digits and . _ : - "
            "(and must start with a letter or digit)"
        )
    return None


def _describe(exc: RequestValidationError) -> str:
    parts = [f"{loc}: {msg}" if loc else msg for loc, msg in exc.problems]
    return f"{exc.product}: " + "; ".join(parts)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def read_batch(
    file: str,
    *,
    batch: str | None = None,
    product: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    file_format: FileFormat | str | None = None,
    stdin: TextIO | None = None,
) -> BatchFile:
    """Read and validate every line of ``file`` (``-`` for ``stdin``).

    Local image files named in a line are read relative to the file's folder (the working
    directory for ``-``).

    Never raises for a bad line: each one becomes a :class:`LineProblem` in the result (call
    :meth:`BatchFile.raise_for_problems` to refuse the file). Raises :class:`IntakeError` only
    when the file itself cannot be read, or ``product`` is unknown.
    """
    text = _read_text(file, stdin)
    shown = "<stdin>" if file == "-" else file
    name = batch or batch_name_for(file)
    fmt = FileFormat(file_format) if file_format else detect_format(file, text)
    defaults = dict(defaults or {})
    default_product = product or defaults.pop("product", None) or DEFAULT_PRODUCT
    defaults.pop("external_task_id", None)  # one id for every line would make one task
    try:
        get_product(str(default_product))
    except KeyError as exc:
        raise IntakeError(f"--product: {exc.args[0]}") from None

    base = Path.cwd() if file == "-" else Path(file).resolve().parent
    out = _collect(shown, fmt, _READERS[fmt](text), name, str(default_product), defaults, base)
    if not out.lines and not out.problems:
        raise IntakeError(f"{shown}: no requests found (blank lines and # comments are skipped)")
    logger.debug("read %s: %d lines, %d problems", shown, len(out.lines), len(out.problems))
    return out


def read_requests(
    requests: Sequence[Any],
    *,
    batch: str,
    product: str | None = None,
    base: Path | None = None,
) -> BatchFile:
    """Validate request objects given as data (the MCP server's ``submit``) exactly as
    :func:`read_batch` validates a file's lines; "line" N is the Nth request (from 1), and the
    file is named ``request``. Local image paths are read relative to ``base`` (the working
    directory by default). Raises :class:`IntakeError` for no requests or an unknown ``product``.
    """
    default_product = product or DEFAULT_PRODUCT
    try:
        get_product(default_product)
    except KeyError as exc:
        raise IntakeError(f"product: {exc.args[0]}") from None
    if not requests:
        raise IntakeError("no requests given: pass one request object or a list of them")
    rows: list[_Raw] = [
        (n, dict(obj), None)
        if isinstance(obj, Mapping)
        else (
            n,
            None,
            f'expected a JSON object such as {{"prompt": "..."}}, got a {_json_type(obj)}',
        )
        for n, obj in enumerate(requests, start=1)
    ]
    return _collect(
        "request", FileFormat.JSON, rows, batch, default_product, {}, base or Path.cwd()
    )


def _collect(
    shown: str,
    fmt: FileFormat,
    rows: Iterable[_Raw],
    name: str,
    default_product: str,
    defaults: Mapping[str, Any],
    base: Path,
) -> BatchFile:
    """Every row validated into a :class:`BatchFile` (ids derived, duplicates refused)."""
    out = BatchFile(file=shown, batch=name, format=fmt)
    seen_ids: dict[str, int] = {}
    occurrences: dict[str, int] = {}
    for number, obj, problem in rows:
        if obj is None:
            out.problems.append(LineProblem(shown, number, problem or "unreadable line"))
            continue
        item = _line(shown, number, obj, name, default_product, defaults, occurrences, base, out)
        if isinstance(item, LineProblem):
            out.problems.append(item)
            continue
        first = seen_ids.get(item.external_task_id)
        if first is not None:
            out.problems.append(
                LineProblem(
                    shown,
                    number,
                    f"external_task_id {item.external_task_id!r} is also used on line {first}; "
                    "every line needs its own",
                )
            )
            continue
        seen_ids[item.external_task_id] = number
        out.lines.append(item)
    return out


def _line(
    file: str,
    number: int,
    obj: dict[str, Any],
    batch: str,
    default_product: str,
    defaults: Mapping[str, Any],
    occurrences: dict[str, int],
    base: Path,
    out: BatchFile,
) -> IntakeLine | LineProblem:
    merged = _merge(defaults, obj)
    product_name = merged.pop("product", None) or default_product
    explicit = merged.pop("external_task_id", None)
    # An empty external_task_id means none, as in Kling's own examples: derive one.
    explicit_given = obj.get("external_task_id") not in (None, "")
    if not isinstance(product_name, str):
        return LineProblem(file, number, 'product must be a string such as "text2video"')
    try:
        prod: Product = get_product(product_name)
    except KeyError as exc:
        return LineProblem(file, number, str(exc.args[0]))
    if explicit_given:
        bad = _check_explicit_id(explicit)
        if bad:
            return LineProblem(file, number, bad)
    merged, unreadable = resolve_local_images(
        merged, prod.request_model.image_fields, base, max_bytes=prod.image_max_bytes
    )
    if unreadable:
        parts = [f"{where}: {msg} (paths are read from {base})" for where, msg in unreadable]
        return LineProblem(file, number, f"{prod.name}: " + "; ".join(parts))
    try:
        checked = prod.check(merged)
    except RequestValidationError as exc:
        return LineProblem(file, number, _describe(exc))
    body = checked.body
    for where, msg in checked.warnings:
        text = f"{where}: {msg}" if where else msg
        out.warnings.append(LineProblem(file, number, f"warning: {prod.name}: {text}"))
    options = body.get("options")
    in_options = (
        options.get("external_task_id")
        if prod.standard is ApiStandard.TASKS and isinstance(options, dict)
        else None
    )
    if not explicit_given and isinstance(in_options, str) and in_options:
        bad = _check_explicit_id(in_options)
        if bad:
            return LineProblem(file, number, "options." + bad)
        explicit, explicit_given = in_options, True
    if explicit_given:
        ext = str(explicit)
    else:
        key = canonical_json([prod.name, body])
        index = occurrences.get(key, 0)
        occurrences[key] = index + 1
        ext = derive_external_id(batch, prod.name, body, index)
    settings = body.get("settings") if isinstance(body.get("settings"), dict) else {}
    return IntakeLine(
        file=file,
        line=number,
        product=prod.name,
        request=body,
        external_task_id=ext,
        explicit_id=explicit_given,
        family=str(prod.family),
        slot_cost=prod.slot_cost(body),
        model=prod.model_of(body),
        mode=_text(body.get("mode")),
        duration=_text(body.get("duration", settings.get("duration") if settings else None)),
    )


def to_new_task(line: IntakeLine, *, callback_url: str | None = None) -> NewTask:
    """The ledger intent for one valid line."""
    return NewTask(
        product=line.product,
        request=line.request,
        external_task_id=line.external_task_id,
        model=line.model,
        mode=line.mode,
        duration=line.duration,
        family=line.family,
        slot_cost=line.slot_cost,
        callback_url=callback_url,
        source_line=line.source_line,
    )
