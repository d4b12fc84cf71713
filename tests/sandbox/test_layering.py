"""The sandbox is an optional extra: it imports only the connector's core, and only the extra's packages.

(The import-linter contracts say the same for the whole package; this keeps
the sandbox's side checked from its own tests, function-level imports included.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[2] / "connector" / "sandbox"
CORE = {"model", "lifecycle", "mapping", "errors", "loading", "runs", "planner"}
EXTRA = {"faker", "uvicorn", "trustme", "cryptography", "lark"}
"""Third-party packages of the ``sandbox`` extra."""


def imported_modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SANDBOX.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and not node.level
                else []
            )
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(SANDBOX)))
    return found


def test_the_sandbox_imports_only_the_core_of_the_connector() -> None:
    outside = {
        name: sorted(files)
        for name, files in imported_modules().items()
        if name.startswith("connector.") and not name.startswith("connector.sandbox") and name.split(".")[1] not in CORE
    }
    assert not outside, f"the sandbox imports client, store, sync or CLI code: {outside}"


def test_the_sandbox_needs_only_the_standard_library_and_its_extra() -> None:
    third_party = {
        name.split(".")[0]
        for name in imported_modules()
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] not in ("connector", "__future__")
    }
    assert third_party <= EXTRA, f"not in the sandbox extra: {sorted(third_party - EXTRA)}"
