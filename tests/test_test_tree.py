"""The test tree's own rules.

Test folders are not packages (helpers such as ``kling_world.py`` are imported by name), so pytest
needs every test module's file name to be unique across the tree. Two ``test_auth.py`` in different
folders stop the whole suite at collection; this test names the culprits instead.
"""

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_test_module_name_is_unique() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name not in ("conftest.py", "__init__.py"):
            seen[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
