"""Plugins (files, modules, entry points) and the run keys that cover user code."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import mechanism_kinds
from pluralguard.eval import plugins
from pluralguard.eval.provenance import code_version, run_key, user_code
from pluralguard.eval.suite import load_suite

_COUNTER = itertools.count()

MECHANISM = """\
from pluralguard.core import lp_consensus, make_outcome, register_mechanism

P = {p}


def mechanism(population, **params):
    res = lp_consensus(population, p=P)
    return make_outcome(population, res.labels, res.X, res.W)


register_mechanism("{kind}", mechanism{version})
"""


def write_plugin(directory: Path, p: float = 2, version: str | None = None,
                 stem: str | None = None) -> tuple[Path, str]:
    stem = stem or f"plugin_test_{next(_COUNTER)}"
    path = directory / f"{stem}.py"
    extra = "" if version is None else f", version={version!r}"
    path.write_text(MECHANISM.format(p=p, kind=f"{stem}_kind", version=extra))
    return path, f"{stem}_kind"


def kinds() -> set[str]:
    return {k for k, _ in mechanism_kinds()}


def test_a_file_plugin_loads_relative_to_its_base_and_reloads_when_edited(tmp_path):
    path, kind = write_plugin(tmp_path)
    ref = plugins.load_plugin(path.name, base=tmp_path, key="plugins[0]")
    assert kind in kinds() and ref.path == str(path.resolve()) and ref.name == path.stem
    assert plugins.load_plugin(str(path)) == ref  # unchanged: not imported again
    module = sys.modules[path.stem]
    write_plugin(tmp_path, p=1, stem=path.stem)
    again = plugins.load_plugin(str(path))
    assert again.digest != ref.digest and sys.modules[path.stem].P == 1
    assert sys.modules[path.stem] is not module


@pytest.mark.parametrize(("text", "needle"), [
    ("missing_plugin.py", "no such plugin file 'missing_plugin.py'"),
    ("not a module", "is neither a module name nor a .py path"),
    ("no_such_module_anywhere", "no module named 'no_such_module_anywhere'"),
])
def test_plugin_errors_name_the_key(tmp_path, text, needle):
    with pytest.raises(InputError) as err:
        plugins.load_plugin(text, base=tmp_path, key="plugins[2]")
    assert err.value.field == "plugins[2]" and needle in err.value.problem


def test_a_plugin_that_raises_or_is_refused_says_so(tmp_path):
    broken = tmp_path / f"broken_{next(_COUNTER)}.py"
    broken.write_text("raise RuntimeError('half-written plugin')\n")
    with pytest.raises(InputError, match="raised RuntimeError: half-written plugin"):
        plugins.load_plugin(str(broken))
    assert broken.stem not in sys.modules
    refused = tmp_path / f"refused_{next(_COUNTER)}.py"
    refused.write_text("from pluralguard.core import register_mechanism\n"
                       "register_mechanism('x', print, capabilities=['wings'])\n")
    with pytest.raises(InputError, match="was refused: capabilities: mechanism 'x' "
                                         "declares unknown capability 'wings'"):
        plugins.load_plugin(str(refused))


def test_a_module_plugin_is_found_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    package = tmp_path / f"userpkg_{next(_COUNTER)}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _, kind = write_plugin(package, stem="mechanisms")
    ref = plugins.load_plugin(f"{package.name}.mechanisms")
    assert kind in kinds() and ref.path is None and ref.search == str(tmp_path)
    namespace = tmp_path / f"nsonly_{next(_COUNTER)}"
    namespace.mkdir()
    with pytest.raises(InputError, match="namespace package"):
        plugins.load_plugin(namespace.name)


def _distribution(root: Path, value: str) -> None:
    """What ``pip install`` leaves for a package declaring a pluralguard plugin."""
    info = root / "userplugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: userplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pluralguard.plugins]\nmine = {value}\n")


def test_installed_entry_points_load(tmp_path, monkeypatch):
    stem = f"installed_{next(_COUNTER)}"
    _, kind = write_plugin(tmp_path, stem=stem)
    _distribution(tmp_path, stem)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.load_entry_points()
    assert kind in kinds()


ATTACK_AND_DEFENSE = """
from dataclasses import dataclass

from pluralguard.attacks import register_attack
from pluralguard.attacks.overshoot import Overshoot
from pluralguard.defenses import register_defense
from pluralguard.defenses.sybil_cap import SybilCap


@register_attack
@dataclass(frozen=True)
class Louder(Overshoot):
    name = "louder_{stem}"
    summary = "test: a user's recipe"


@register_defense
@dataclass(frozen=True)
class Capped(SybilCap):
    name = "capped_{stem}"
    summary = "test: a user's defense"
"""


@pytest.mark.slow
def test_entry_point_plugins_work_in_worker_processes(tmp_path):
    """A package's mechanism, attack and defense, loaded by every worker."""
    stem = f"installed_{next(_COUNTER)}"
    site = tmp_path / "site"
    site.mkdir()
    path, kind = write_plugin(site, stem=stem)
    path.write_text(path.read_text() + ATTACK_AND_DEFENSE.format(stem=stem))
    _distribution(site, stem)
    suite = tmp_path / "suite.toml"
    suite.write_text(f'datasets = ["evs2017"]\nmechanisms = ["{kind}"]\n'
                     f'defenses = ["capped_{stem}"]\n'
                     f'attacks = [{{name = "louder_{stem}", budgets = [0.1, 0.3]}}]\n')
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "pluralguard.eval.cli", "run", str(suite),
                           "--out", str(tmp_path / "out"), "--jobs", "2", "--batch", "1",
                           "--quiet", "--no-report"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {**summary["counts"], "rows": 6, "failed": 0,
                                 "not_applicable": 0}


def test_run_keys_cover_plugin_code_and_declared_versions(tmp_path):
    path, kind = write_plugin(tmp_path)
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(f'plugins = ["{path.name}"]\ndatasets = ["evs2017"]\n'
                          f'mechanisms = ["{kind}", "consensus"]\n'
                          'attacks = [{name = "sybil", budgets = [0.1]}]\n')

    def keys() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in load_suite(suite_file).grid():
            out.setdefault(p.mechanism.label, []).append(run_key(p))
        return out

    before = keys()
    assert all(user_code(p) == "{}" for p in load_suite(suite_file).grid()
               if p.mechanism.label == "consensus")  # pluralguard's own code only
    write_plugin(tmp_path, p=1, stem=path.stem)  # an edit of the plugin
    after = keys()
    assert not set(after[kind]) & set(before[kind])  # exactly the plugin's runs change
    assert after["consensus"] == before["consensus"]

    write_plugin(tmp_path, p=2, version="1", stem=path.stem)
    versioned = keys()
    write_plugin(tmp_path, p=1, version="1", stem=path.stem)  # same declared version
    assert keys() == versioned
    write_plugin(tmp_path, p=1, version="2", stem=path.stem)
    assert keys()[kind] != versioned[kind]


def test_code_version_of_closures_includes_their_captured_values():
    def factory(p):
        def mechanism(population):
            return p
        return mechanism

    assert code_version(factory(1)) != code_version(factory(2))
    assert code_version(factory(1)) == code_version(factory(1))
    assert code_version(factory, "7") == "version:7"
