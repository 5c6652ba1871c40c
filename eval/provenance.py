"""Which code computed a run: the part of a run key that covers code outside pluralguard.

A run key (:func:`run_key`) hashes what the run computes and
the code that computes it: pluralguard's own source (``code_digest``) and, from here, the
*code version* of every registered callable the run uses that pluralguard does not ship —
the mechanism kind's function, the attack recipe class, every defense class of the chain,
and callables or objects of user classes among the mechanism's parameters and transforms.

A callable's code version is, in order of preference:

1. its declared version — ``register_mechanism(..., version="3")`` for a mechanism kind,
   a class attribute ``version = "3"`` on an attack or defense class;
2. the source of the package or module that defines it (every ``.py`` file of its
   top-level package, or its one file), plus the values a closure captured;
3. its compiled code (a function without a source file, e.g. typed at a prompt).

So editing a plugin invalidates exactly the runs that use what it registered, and a
declared version lets its author decide when results are stale (bump it).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import marshal
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import version
from pathlib import Path
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any

from pluralguard.attacks import ATTACKS
from pluralguard.core.mechanism import registered_kind
from pluralguard.defenses import DEFENSES

from .jsonio import canonical_json

if TYPE_CHECKING:
    from .suite import GridPoint

_OWN = "pluralguard."
#: The subpackages whose source :func:`code_digest` covers.
_PACKAGES = ("core", "attacks", "defenses", "eval")
_PLAIN = (str, bytes, int, float, complex, bool, type(None))


def _own(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.startswith(_OWN)


@cache
def _files_digest(paths: tuple[tuple[str, int, int], ...]) -> str:
    """Digest of files given as (path, mtime_ns, size): cached until one changes."""
    h = hashlib.sha256()
    for path, _, _ in paths:
        h.update(path.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def _module_files(module: ModuleType) -> list[Path]:
    """The files of ``module``'s top-level package (or its one file)."""
    top = sys.modules.get(module.__name__.split(".")[0], module)
    roots = list(getattr(top, "__path__", []))
    if roots:
        return sorted(p for root in roots for p in Path(root).rglob("*.py"))
    source = inspect.getsourcefile(module) if getattr(module, "__file__", None) else None
    return [Path(source)] if source else []


def _source_version(obj: Any) -> str | None:
    """Digest of the source files defining ``obj`` (None when it has none)."""
    module = inspect.getmodule(obj)
    if module is None or module.__name__ == "__main__":
        return None
    try:
        files = _module_files(module)
    except TypeError:  # a built-in module
        return None
    if not files:
        return None
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return f"src:{_files_digest(stamps)}"


def _captured(function: FunctionType) -> str:
    """Plain values a closure captured (a factory's parameters change what it computes)."""
    cells = function.__closure__ or ()
    values = []
    for cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, _PLAIN) or (isinstance(value, tuple)
                                         and all(isinstance(v, _PLAIN) for v in value)):
            values.append(repr(value))
    return ",".join(values)


def code_version(obj: Any, declared: str | None = None) -> str:
    """The code version of a callable, class or object (module doc)."""
    if declared is not None:
        return f"version:{declared}"
    if isinstance(obj, MethodType):
        return f"{code_version(obj.__func__)}<{code_version(obj.__self__)}>"
    target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    version = getattr(target, "version", None) if inspect.isclass(target) else None
    if isinstance(version, str):
        return f"version:{version}"
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    source = _source_version(target)
    if isinstance(obj, FunctionType):
        captured = _captured(obj)
        if source is None:
            source = "code:" + hashlib.sha256(marshal.dumps(obj.__code__)).hexdigest()[:16]
        return f"{name}@{source}" + (f"[{captured}]" if captured else "")
    return f"{name}@{source or 'unknown'}"


def _objects(value: Any) -> Iterator[Any]:
    """Non-plain objects inside a parameter value (containers walked)."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _objects(v)
    elif not type(value).__module__.startswith(("numpy", "builtins")):
        yield value
        if hasattr(value, "__dataclass_fields__"):  # e.g. a wrapper rule's inner rule
            for name in value.__dataclass_fields__:
                yield from _objects(getattr(value, name))


def user_code(point: GridPoint) -> str:
    """Canonical text of the code versions of the user code a grid point uses."""
    mechanism = point.mechanism.mechanism
    parts: dict[str, str] = {}
    kind = registered_kind(mechanism.kind)
    if not _own(kind.function) or kind.version is not None:
        parts[f"mechanism:{mechanism.kind}"] = code_version(kind.function, kind.version)
    for i, obj in enumerate(_objects([mechanism.params, list(mechanism.transforms)])):
        if not _own(obj):
            parts[f"mechanism.param[{i}]"] = code_version(obj)
    if point.attack.name in ATTACKS:
        recipe = ATTACKS[point.attack.name]
        if not _own(recipe):
            parts[f"attack:{point.attack.name}"] = code_version(recipe)
    for name, _ in point.defense.steps:
        if name in DEFENSES and not _own(DEFENSES[name]):
            parts[f"defense:{name}"] = code_version(DEFENSES[name])
    return canonical_json(parts)


# ------------------------------------------------------------------ run keys
@cache
def code_digest() -> str:
    """SHA-256 (16 hex digits) of the package version and every source file of pluralguard."""
    h = hashlib.sha256(version("pluralguard").encode())
    for name in _PACKAGES:
        root = Path(importlib.import_module(f"pluralguard.{name}").__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_key(point: GridPoint) -> str:
    """Content address of one run: pluralguard's code, the user code the run uses and
    what it computes (module doc)."""
    text = f"{code_digest()}\x00{user_code(point)}\x00{point.content}"
    return hashlib.sha256(text.encode()).hexdigest()
