"""Extras: what ``import neuroconv`` loads, the extras of pyproject.toml against the
modules each part checks (neuroconv.extras), and the error that names a missing extra.
The install without extras is tested for real in tests/test_core_install.py."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuroconv import extras

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OPTIONAL = PROJECT["optional-dependencies"]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)


# ----------------------------------------------------------------------------- light imports

#: modules that load neither torch nor the layers (the torch-free side of the package)
TORCH_FREE = ["neuroconv", "neuroconv.extras", "neuroconv.cli", "neuroconv.io", "neuroconv.data",
              "neuroconv.data.store", "neuroconv.pipelines", "neuroconv.pipelines.runner", "neuroconv.engine",
              "neuroconv.engine.folds", "neuroconv.engine.config", "neuroconv.engine.compare", "neuroconv.brain",
              "neuroconv.estimators", "neuroconv.lra", "neuroconv.lra.cli", "neuroconv.kernel_tools",
              "neuroconv.bench"]


def test_importing_neuroconv_or_a_submodule_loads_no_torch():
    code = ("import sys\n"
            f"for m in {TORCH_FREE!r}:\n"
            "    __import__(m)\n"
            "    heavy = [h for h in ('torch', 'neuroconv.layers', 'lightning', 'mne', 'triton') if h in sys.modules]\n"
            "    assert not heavy, (m, heavy)\n"
            "print('ok')")
    out = _python(code)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
    out = _python("import sys, neuroconv; assert 'torch' not in sys.modules; from neuroconv import fftconv, LongConv; "
                  "assert 'torch' in sys.modules and callable(fftconv) and fftconv.__module__ == 'neuroconv.fftconv'; "
                  "import neuroconv.fftconv; assert neuroconv.fftconv is fftconv; "
                  "assert set(neuroconv.__all__) <= set(dir(neuroconv)); print('ok')")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_every_public_name_resolves():
    import neuroconv

    for name in neuroconv.__all__:
        assert getattr(neuroconv, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        neuroconv.nope  # noqa: B018


# ----------------------------------------------------------------------------- pyproject


def _name(req: str) -> str:
    return re.split(r"[\[<>=;! ~]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def _extras_of(req: str) -> list[str]:
    m = re.match(r"[^\[]+\[([^\]]+)\]", req)
    return [e.strip() for e in m.group(1).split(",")] if m else []


def test_the_core_is_torch_and_numpy():
    assert sorted(_name(r) for r in PROJECT["dependencies"]) == ["numpy", "torch"]


def test_each_extra_is_checked_by_the_modules_it_installs():
    """neuroconv.extras.EXTRAS and pyproject.toml name the same extras, and every module an
    extra is checked by comes from a distribution that extra lists (or one they require)."""
    assert set(OPTIONAL) - {"dev"} == set(extras.EXTRAS)
    provided = md.packages_distributions()  # import name -> distributions
    for extra, modules in extras.EXTRAS.items():
        listed = {_name(r) for r in OPTIONAL[extra]}
        reach = set(listed)
        for dist in listed:  # one level down: dask[distributed] brings distributed
            for req in md.requires(dist) or []:
                reach.add(_name(req))
        for module in modules:
            dists = {d.lower().replace("_", "-") for d in provided.get(module, [])}
            assert dists & reach, (extra, module, dists, sorted(listed))


def test_brain_holds_lra_and_dev_holds_every_extra():
    assert {_name(r) for r in OPTIONAL["lra"]} <= {_name(r) for r in OPTIONAL["brain"]}
    lra = {_name(r): r for r in OPTIONAL["lra"]}
    assert all(lra[_name(r)] == r for r in OPTIONAL["brain"] if _name(r) in lra)  # the same floors
    self_ref = [r for r in OPTIONAL["dev"] if _name(r) == "neuroconv"]
    assert len(self_ref) == 1 and set(_extras_of(self_ref[0])) == set(OPTIONAL) - {"dev"}
    assert {"pytest", "hypothesis", "pytest-xdist", "pytest-timeout"} <= {_name(r) for r in OPTIONAL["dev"]}


def test_the_dev_install_has_every_extra():
    """The suite runs on `pip install -e ".[dev]"`: nothing an extra checks is missing."""
    gaps = {extra: extras.missing(extra) for extra in extras.EXTRAS}
    if sys.platform != "linux":
        gaps.pop("gpu")
    assert not any(gaps.values()), gaps


# ----------------------------------------------------------------------------- the error


def test_require_names_the_extra_and_the_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "mne", None)  # what find_spec reports for a module that is not there
    monkeypatch.setitem(sys.modules, "nilearn", None)
    assert extras.missing("brain") == ["mne", "nilearn"]
    with pytest.raises(extras.MissingExtraError) as err:
        extras.require("brain", "neuroconv.brain")
    assert isinstance(err.value, ImportError) and err.value.extra == "brain"
    assert str(err.value) == ("neuroconv.brain needs neuroconv's 'brain' extra, which is not installed here (missing: "
                              "mne, nilearn). Install it with: pip install 'neuroconv[brain]'")
    extras.require("lra")  # installed: silent
    with pytest.raises(ValueError, match=r"`extra` must be one of \[.*'brain'.*\]; got 'brains'"):
        extras.missing("brains")


@pytest.mark.parametrize("module,blocked,extra", [("neuroconv.brain", "mne", "brain"),
                                                  ("neuroconv.pipelines", "nibabel", "brain"),
                                                  ("neuroconv.estimators", "sklearn", "brain"),
                                                  ("neuroconv.lra", "lightning", "lra")])
def test_each_part_names_its_extra_when_imported_without_it(module, blocked, extra):
    out = _python(f"import sys; sys.modules[{blocked!r}] = None\n"
                  f"try:\n    import {module}\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"MissingExtraError {module} needs neuroconv's '{extra}' extra, which is not installed "
                                  f"here (missing: {blocked}). Install it with: pip install 'neuroconv[{extra}]'")


def test_the_command_line_lists_and_explains_a_missing_extra():
    code = ("import sys; sys.modules['mne'] = None\n"
            "from neuroconv.cli import main\n"
            "for argv in (['decode', '--help'], ['preprocess', 'eeg', 'x'], ['bench', 'preprocess'], ['--help']):\n"
            "    try:\n        rc = main(argv)\n    except SystemExit as e:\n        rc = e.code\n"
            "    print('rc', argv[0], rc)\n")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "rc decode 1" in out.stdout and "rc preprocess 1" in out.stdout and "rc bench 1" in out.stdout
    assert "rc --help 0" in out.stdout
    for cmd in ("neuroconv decode", "neuroconv preprocess", "neuroconv bench preprocess"):
        assert (f"{cmd}: needs neuroconv's 'brain' extra, which is not installed here (missing: mne). Install it "
                "with:\n    pip install 'neuroconv[brain]'") in out.stderr, out.stderr
    for cmd in ("pretrain", "decode", "plot"):
        assert re.search(rf"\n\s+{cmd}\s+\(not installed: pip install 'neuroconv\[brain\]'\)", out.stdout), out.stdout
    assert re.search(r"\n\s+lra\s+long-range-arena", out.stdout)  # its extra is there: listed as usual
