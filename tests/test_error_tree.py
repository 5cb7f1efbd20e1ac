"""One error tree: the drawing in klingwatch.errors is every error class klingwatch defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import klingwatch
from klingwatch import errors
from klingwatch.errors import ConfigurationError, KlingwatchError
from klingwatch.kling.errors import (
    KlingError,
    MissingCredentials,
    RequestValidationError,
    UnknownProduct,
)
from klingwatch.store.errors import LedgerError

_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)")


def _drawn_tree() -> dict[str, str | None]:
    """Parse the module docstring's tree into {class name: parent name}."""
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = _TREE_LINE.match(line[4:])  # the block is indented four spaces
        assert match, f"unparsable tree line: {line!r}"
        depth = len(match["indent"]) // 4
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match["name"]] = stack[-1][1] if stack else None
        stack.append((depth, match["name"]))
    return parents


def _every_module() -> None:
    for info in pkgutil.walk_packages(klingwatch.__path__, "klingwatch."):
        if ".migrations" not in info.name:  # alembic's scripts run only under alembic
            importlib.import_module(info.name)


def _real_tree() -> dict[str, str | None]:
    _every_module()
    parents: dict[str, str | None] = {KlingwatchError.__name__: None}
    todo = [KlingwatchError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if not sub.__module__.startswith("klingwatch."):
                continue  # a test's own subclass
            ours = [b for b in sub.__bases__ if issubclass(b, KlingwatchError)]
            assert len(ours) == 1, f"{sub.__name__} has {len(ours)} klingwatch parents"
            parents[sub.__name__] = ours[0].__name__
            todo.append(sub)
    return parents


def test_the_drawn_tree_is_every_error_class_klingwatch_defines() -> None:
    assert _drawn_tree() == _real_tree()


def test_no_two_error_classes_share_a_name() -> None:
    _every_module()
    seen: dict[str, str] = {}
    todo = [KlingwatchError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            where = f"{sub.__module__}.{sub.__qualname__}"
            assert seen.setdefault(sub.__name__, where) == where, f"two {sub.__name__}"
            todo.append(sub)


@pytest.mark.parametrize(
    "cls",
    [KlingError, LedgerError, ConfigurationError, RequestValidationError],
)
def test_one_class_catches_everything_klingwatch_raises(cls: type[Exception]) -> None:
    assert issubclass(cls, klingwatch.KlingwatchError)
    assert klingwatch.KlingError is KlingError


@pytest.mark.parametrize(
    "err",
    [
        MissingCredentials(),
        UnknownProduct("txt2video", ["text2video"]),
        RequestValidationError("text2video", [("prompt", "required field is missing")]),
    ],
)
def test_what_kling_never_said_is_not_a_kling_error(err: KlingwatchError) -> None:
    assert not isinstance(err, KlingError)
    assert isinstance(err, KlingwatchError)


def test_local_errors_of_the_engine_hang_off_the_root_not_off_kling_error() -> None:
    from klingwatch.monitor.fetch import FetchError
    from klingwatch.monitor.intake import IntakeError
    from klingwatch.monitor.layout import TemplateError
    from klingwatch.monitor.locks import FileBusy
    from klingwatch.monitor.retries import RetryRefused

    for cls in (FetchError, IntakeError, TemplateError, FileBusy, RetryRefused):
        assert not issubclass(cls, KlingError), cls
    assert TemplateError.__bases__ == (ConfigurationError,)


def test_the_root_message_is_the_line_the_cli_prints() -> None:
    err = KlingwatchError("set KLING_API_KEY")
    assert str(err) == err.message == "set KLING_API_KEY"
