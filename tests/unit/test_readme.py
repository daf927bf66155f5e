"""The README's tables that can drift from the code: the module map names every module."""

import re

import pytest

from ..conftest import REPO

pytestmark = pytest.mark.unit


def layout_rows() -> dict[str, str]:
    """The README's Layout table: each row's first cell (module or package), and the row."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("Each module does one job:"):].split("\n\n")[1]
    return {row.split("|")[1].strip().strip("`"): row for row in table.splitlines() if row.startswith("| `")}


def test_the_module_map_names_every_module():
    rows = layout_rows()
    missing = []
    for path in sorted((REPO / "src" / "mlcompile").rglob("*.py")) + sorted((REPO / "fixtures").glob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(REPO / "src" / "mlcompile") if "src" in path.parts else path.relative_to(REPO)
        if len(relative.parts) == 1:  # a top-level module: named in a row of its own (or with another)
            named = any(re.search(rf"`(src/mlcompile/)?{re.escape(path.name)}`", key + row) for key, row in rows.items())
        elif relative.parts[0] == "fixtures":
            named = str(relative) in rows
        else:  # a package's module: named in the package's row, with or without .py
            row = rows.get(f"{relative.parts[0]}/", "")
            named = bool(re.search(rf"`{re.escape(path.stem)}(\.py)?`", row))
        if not named:
            missing.append(str(relative))
    assert not missing, f"README's Layout table does not name: {missing}"
