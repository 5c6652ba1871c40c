"""Plugins: user code that registers mechanisms, attacks and defenses.

A plugin is a Python module that registers what it brings when imported
(:func:`~pluralguard.core.mechanism.register_mechanism`,
:func:`~pluralguard.attacks.register_attack`,
:func:`~pluralguard.defenses.register_defense`). It comes from one of:

* ``--plugin MODULE`` or ``--plugin FILE.py`` on every command (repeatable): a module
  importable from the current directory (as ``python -m`` would find it) or the path of
  a ``.py`` file, imported under its file name (its directory is put on ``sys.path``
  first, so it may import its neighbours);
* ``plugins = ["my_mechanism.py", "package.module"]`` in a suite, files relative to the
  suite file;
* installed packages: every entry point of the group :data:`GROUP` is loaded by the
  command line, by :func:`~pluralguard.eval.suite.load_suite` and by every worker — a
  module to import, or a callable to call once::

      [project.entry-points."pluralguard.plugins"]
      my_mechanisms = "my_package.pluralguard_plugin"

Loading returns a :class:`PluginRef` (with a digest of the source). A suite carries the
refs its runs need (:attr:`Suite.plugins <pluralguard.eval.suite.Suite.plugins>`: its
``plugins`` key, plus ``--plugin``; from Python, ``suite.with_plugins(load_plugins([...]))``)
and the suite runner loads the same ones in each worker process, joblib or Dask, before it
runs anything (:func:`ensure`): ``--jobs N`` works with user code. A plugin whose source
changed since a process loaded it is imported again, so long-lived workers never run
stale code. Workers of a remote Dask cluster must see the same files at the
same paths; install the plugin as a package with an entry point instead.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from pluralguard.core.errors import InputError

#: Entry-point group of installed plugins.
GROUP = "pluralguard.plugins"

_FIX = ("give the path of a .py file or a module importable from the current directory "
        "(repeat --plugin for several)")


@dataclass(frozen=True)
class PluginRef:
    """How to load one plugin again, in another process.

    Attributes
    ----------
    name : str
        Its module name.
    path : str or None
        The ``.py`` file of a file plugin (None for a module plugin).
    search : str or None
        A ``sys.path`` entry a module plugin is imported from (the current directory
        when it was found there), or None.
    digest : str
        SHA-256 (16 hex digits) of its source when it was loaded.
    """

    name: str
    path: str | None
    search: str | None
    digest: str


_LOADED: dict[str, PluginRef] = {}
_ENTRY_POINTS: set[str] = set()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _execute(name: str, path: Path, key: str, spec_text: str) -> ModuleType:
    """Import the file ``path`` as module ``name`` (again, if it was)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(key, f"cannot import {spec_text!r} as a module", _FIX)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except InputError as err:
        _restore(name, previous)
        raise InputError(key, f"plugin {spec_text!r} was refused: {err}",
                         "fix the registration in the plugin") from None
    except Exception as err:
        _restore(name, previous)
        raise InputError(key, f"plugin {spec_text!r} raised {type(err).__name__}: {err}",
                         f"fix the plugin (python {path} shows the traceback)") from None
    return module


def _restore(name: str, previous: ModuleType | None) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def _load_file(text: str, base: Path | None, key: str) -> PluginRef:
    given = Path(text).expanduser()
    path = (given if given.is_absolute() or base is None else base / given).resolve()
    if not path.is_file():
        raise InputError(key, f"no such plugin file {text!r}"
                         + (f" (looked in {base})" if base is not None else ""), _FIX)
    name = path.stem
    if not name.isidentifier():
        raise InputError(key, f"{path.name!r} is not a valid module name",
                         "rename the file to letters, digits and underscores")
    existing = sys.modules.get(name)
    if existing is not None:
        origin = getattr(existing, "__file__", None)
        if origin is None or Path(origin).resolve() != path:
            raise InputError(key, f"a module named {name!r} is already imported from "
                             f"{origin or 'elsewhere'}", "rename the plugin file")
    digest = _digest(path)
    known = _LOADED.get(name)
    if existing is None or known is None or known.digest != digest:
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        _execute(name, path, key, text)
    ref = PluginRef(name, str(path), None, digest)
    _LOADED[name] = ref
    return ref


def _load_module(name: str, key: str, search: str | None = None) -> PluginRef:
    if search is None:
        search = str(Path.cwd())
    if search not in sys.path:
        sys.path.insert(0, search)
    known = _LOADED.get(name)
    try:
        module = importlib.import_module(name)
        path = Path(module.__file__ or "")
        if known is not None and path.is_file() and known.digest != _digest(path):
            module = importlib.reload(module)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise InputError(key, f"no module named {name!r} (looked in {search} and the "
                             "installed packages)", _FIX) from None
        raise InputError(key, f"plugin {name!r} raised ModuleNotFoundError: {err}",
                         "install what the plugin imports") from None
    except InputError as err:
        raise InputError(key, f"plugin {name!r} was refused: {err}",
                         "fix the registration in the plugin") from None
    except Exception as err:
        raise InputError(key, f"plugin {name!r} raised {type(err).__name__}: {err}",
                         f"fix the plugin (python -m {name} shows the traceback)") from None
    if not module.__file__:
        raise InputError(key, f"{name!r} is a namespace package, not a module",
                         "name a module or a package with an __init__.py")
    path = Path(module.__file__).resolve()
    inside = path.is_relative_to(Path(search).resolve())
    ref = PluginRef(name, None, search if inside else None, _digest(path))
    _LOADED[name] = ref
    return ref


def load_plugin(text: str, *, base: Path | None = None, key: str = "--plugin") -> PluginRef:
    """Load one plugin: a ``.py`` file (relative to ``base``, default the current
    directory) or a module name (module doc).

    Raises
    ------
    InputError
        Naming ``key`` when the plugin is missing, fails to import, or its registration
        is refused.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(key, f"expected a module name or a .py path, got {text!r}", _FIX)
    text = text.strip()
    if text.endswith(".py") or "/" in text or "\\" in text:
        return _load_file(text, base, key)
    if not all(part.isidentifier() for part in text.split(".")):
        raise InputError(key, f"{text!r} is neither a module name nor a .py path", _FIX)
    return _load_module(text, key)


def load_plugins(texts: Iterable[str], *, base: Path | None = None, key: str = "--plugin"
                 ) -> tuple[PluginRef, ...]:
    """Load several plugins (``key[i]`` names each in errors when ``key`` is a suite key)."""
    texts = list(texts)
    suffix = key != "--plugin"
    return tuple(load_plugin(t, base=base, key=f"{key}[{i}]" if suffix else key)
                 for i, t in enumerate(texts))


def load_entry_points() -> None:
    """Load every installed plugin of the :data:`GROUP` entry-point group (once each)."""
    for ep in entry_points(group=GROUP):
        if ep.value in _ENTRY_POINTS:
            continue
        key = f"entry point {ep.name!r} ({ep.value}) of group {GROUP}"
        try:
            target = ep.load()
            if callable(target) and not isinstance(target, ModuleType):
                target()
        except Exception as err:
            raise InputError(key, f"raised {type(err).__name__}: {err}",
                             "fix or uninstall the package that declares it") from None
        _ENTRY_POINTS.add(ep.value)


def ensure(refs: Sequence[PluginRef]) -> None:
    """Load, in this (worker) process, the plugins another process loaded, importing any
    whose source changed since; then the installed entry points.

    Raises
    ------
    InputError
        When a plugin cannot be loaded here, or its source changed after the suite
        started (the run keys would not describe the code that ran).
    """
    for ref in refs:
        known = _LOADED.get(ref.name)
        if known is not None and known.digest == ref.digest:
            continue
        key = f"plugin {ref.path or ref.name!r} in worker"
        if ref.path is not None:
            now = _load_file(ref.path, None, key)
        else:
            now = _load_module(ref.name, key, ref.search)
        if now.digest != ref.digest:
            raise InputError(key, "its source changed while the suite was running",
                             "rerun the command (finished runs are kept)")
    load_entry_points()
