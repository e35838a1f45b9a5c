"""The API reference is complete: every public name of chainrule and every registered model has an entry.

A public name is one in the `__all__` of `chainrule` or of one of its subpackages; it is documented
when a `::: target` block of docs/reference/*.md renders it: the block names it (or another name for
the same object), or names its module and either lists it under `members:` or lists no members
(then mkdocstrings renders every public member). Adding a public class, function or model without
a reference entry fails here, naming what is missing and where it lives.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import chainrule
from chainrule import persistence

pytestmark = pytest.mark.docs

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
BLOCK = re.compile(r"^::: ([\w.]+)[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.MULTILINE)
MEMBERS = re.compile(r"^\s+members:\s*\[([^\]]*)\]", re.MULTILINE)


def public_packages() -> list[ModuleType]:
    """`chainrule` and each of its subpackages that declares `__all__`."""
    subs = [importlib.import_module(f"chainrule.{m.name}") for m in pkgutil.iter_modules(chainrule.__path__)]
    return [chainrule] + [m for m in subs if hasattr(m, "__all__") and hasattr(m, "__path__")]


def public_names() -> dict[str, object]:
    """`package.name` -> object, for every name in a public package's `__all__`."""
    return {f"{pkg.__name__}.{n}": getattr(pkg, n) for pkg in public_packages() for n in pkg.__all__}


def resolve(target: str) -> object:
    """The object a `::: target` names (a module, or an attribute of the longest importable prefix)."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def documented() -> tuple[set[int], dict[str, object]]:
    """Ids of the objects the reference pages render, and the dotted names they render them under."""
    ids: set[int] = set()
    names: dict[str, object] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for m in BLOCK.finditer(page.read_text()):
            target, options = m[1], m[2]
            obj = resolve(target)
            ids.add(id(obj))
            names[target] = obj
            if not inspect.ismodule(obj):
                continue
            listed = MEMBERS.search(options)
            if listed:
                members = [s.strip() for s in listed[1].split(",") if s.strip()]
            else:
                members = getattr(obj, "__all__", [n for n in vars(obj) if not n.startswith("_")])
            for n in members:
                ids.add(id(getattr(obj, n)))
                names[f"{target}.{n}"] = getattr(obj, n)
    return ids, names


def is_documented(name: str, obj: object, ids: set[int], names: dict[str, object]) -> bool:
    """Rendered under this name, or (a class or function) under another path to the same object, or
    (a constant) under the same attribute name in the module that defines it."""
    if name in names:
        return True
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return id(obj) in ids
    attr = name.rsplit(".", 1)[1]
    return any(n.rsplit(".", 1)[-1] == attr and o is obj for n, o in names.items())


def test_every_public_name_has_a_reference_entry() -> None:
    ids, names = documented()
    every = public_names()
    assert len(every) > 100, len(every)
    # a re-exported subpackage (chainrule.models) is checked name by name as a package of its own
    missing = [
        n for n, obj in every.items() if not inspect.ismodule(obj) and not is_documented(n, obj, ids, names)
    ]
    assert not missing, "public names without an entry in docs/reference/*.md:\n" + "\n".join(missing)


def test_every_registered_model_has_a_reference_entry() -> None:
    persistence.register_everything()
    ids, _ = documented()
    assert len(persistence.MODEL_REGISTRY) >= 15
    missing = [
        f"{name}: {cls.__module__}.{cls.__qualname__}"
        for name, cls in persistence.MODEL_REGISTRY.items()
        if id(cls) not in ids
    ]
    assert not missing, "registered models without an entry in docs/reference/*.md:\n" + "\n".join(missing)


def test_every_reference_block_resolves() -> None:
    """A `::: target` that no longer imports would break the build; say which page holds it."""
    bad = []
    for page in sorted(REFERENCE.glob("*.md")):
        for m in BLOCK.finditer(page.read_text()):
            try:
                resolve(m[1])
            except (ImportError, AttributeError) as e:
                bad.append(f"{page.name}: ::: {m[1]} ({e})")
    assert not bad, "\n".join(bad)
