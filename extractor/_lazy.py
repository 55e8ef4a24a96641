"""Public names imported on first use (PEP 562), so a package's ``__init__`` costs
nothing until a name is asked for.

A package says where each name lives once, in its ``if TYPE_CHECKING:`` imports: the type
checker reads them as they are, and :func:`exports` reads them from the package's source
the first time a name is asked for.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, MutableMapping, Sequence
from types import ModuleType
from typing import Any


def exports(
    namespace: MutableMapping[str, Any], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's ``__getattr__`` and ``__dir__``: each of ``names`` is imported
    from the module its ``TYPE_CHECKING`` block names when first asked for, then kept in
    ``namespace``."""
    package = namespace["__name__"]
    homes: dict[str, str] = {}

    def getattr_(name: str) -> Any:
        if not homes:
            homes.update(_homes(namespace["__loader__"].get_source(package)))
        home = homes.get(name)
        if home is None or name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        loaded = {n for n, v in namespace.items() if isinstance(v, ModuleType) and "." not in n}
        return sorted({*names, *(n for n in loaded if not n.startswith("_"))} - {"importlib"})

    return getattr_, dir_


def _homes(source: str) -> dict[str, str]:
    """Map each name imported under ``if TYPE_CHECKING:`` to the module it comes from."""
    homes = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    homes.update({a.asname or a.name: statement.module for a in statement.names})
    return homes
