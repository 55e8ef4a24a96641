"""Public names imported on first use (PEP 562), so a package's ``__init__`` costs
nothing until a name is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any


def exports(
    package: str,
    homes: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    names: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's ``__getattr__`` and ``__dir__``: each name in ``homes`` is
    imported from its module when first asked for, then kept in ``namespace``."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        loaded = {n for n, v in namespace.items() if isinstance(v, ModuleType) and "." not in n}
        return sorted({*names, *(n for n in loaded if not n.startswith("_"))} - {"importlib"})

    return getattr_, dir_
