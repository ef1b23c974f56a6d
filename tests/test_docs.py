"""The documentation: words for users only, a site that builds, commands that parse.

- Every user-facing text (README.md, BENCHMARKS.md, docs/**/*.md, examples/*.py,
  configs/*.yaml) is free of words about how the project is worked on.
- ``mkdocs build --strict`` passes (no warning: broken links, unresolved API objects,
  docstrings that do not parse).
- Every ``neuroconv ...`` command line of README.md, BENCHMARKS.md and docs/**/*.md (code
  blocks and inline code) uses only flags that its job's help lists, and names a job,
  source or plot that exists.
- The guide's preprocessing page names every registered data source, and its plugin
  example registers a model whose settings become config keys.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- words
#: phrases that describe how the project is worked on, not what it does (case-insensitive;
#: word boundaries so that "around", "rounding", "round trip" or a recording "session"
#: are not caught)
BANNED = {
    "sandbox": r"\bsandbox(es)?\b",
    "round (of work)": r"\b(this|that|next|each|per|last|previous|earlier|later|one|a) round\b(?![\s-]trip)",
    "issue N": r"\bissues?\s*#?\d+",
    "the project's issue": r"\b(this|the|its|that|an?) (project's )?issue\b",
    "its first name": r"\bits first name\b",
    "did not survive": r"\bdid not survive\b",
    "whoever": r"\bwhoever\b",
    "earlier in the day": r"\bearlier in the day\b",
    "targets of this round": r"\btargets? of (this|the) round\b",
    "fair protocol": r"\bfair protocol\b",
    "other people's jobs": r"\bother (agents|developers|people|helpers|sessions)'?s? jobs\b",
    "lab": r"\blabs?\b",
    "agent": r"\bagents?\b",
    "helper": r"\bhelpers?\b",
    "session (of work)": r"\b(this|next|a later|an earlier|the previous|another coding|a coding) session\b(?!'s| \d)"
                         r"|\bsession with a (GPU|CUDA)",
}
_BANNED = {name: re.compile(rx, re.IGNORECASE) for name, rx in BANNED.items()}


def _user_texts() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "examples").glob("*.py"))
    files += sorted((ROOT / "configs").glob("*.yaml"))
    return [f for f in files if f.is_file()]


def test_banned_patterns_catch_what_they_are_meant_to_and_spare_domain_words():
    def hits(text):
        return {name for name, rx in _BANNED.items() if rx.search(text)}

    assert hits("measured on the 2-core sandbox") == {"sandbox"}
    assert hits("Target of issue 15: 12 folds") == {"issue N"}
    assert hits("the targets of this round, where they stand") >= {"targets of this round"}
    assert hits("other agents' jobs ran throughout") >= {"other people's jobs", "agent"}
    assert hits("left for a later session with a GPU") >= {"session (of work)"}
    assert hits("Whoever next has a GPU runs") == {"whoever"}
    # domain words stay
    for ok in ("subject 3's session 2 is refused", "WithinSessionEvaluation", "a round trip through the FFT",
               "rounding to float64", "results.round(3)", "a byte-identical copy of another session's file",
               "2-core AMD EPYC, 24 GiB, shared with other jobs", "the labels of each recording",
               "a Python process that stays up"):
        assert hits(ok) == set(), ok


def test_user_texts_speak_to_users_only():
    found = []
    for path in _user_texts():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name, rx in _BANNED.items():
                if rx.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: [{name}] {line.strip()}")
    assert not found, "words about how the project is worked on:\n" + "\n".join(found)


# --------------------------------------------------------------------------- site
@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed "
                    "(pip install -e '.[docs]')")
@pytest.mark.skipif(importlib.util.find_spec("mkdocstrings_handlers") is None,
                    reason="mkdocstrings[python] is not installed (pip install -e '.[docs]')")
def test_mkdocs_build_strict_passes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert (tmp_path / "site" / "guide" / "decode" / "index.html").is_file()


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs links to; GitHub's is the same for these)."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_readme_links_into_the_results_page_resolve():
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", (ROOT / "docs" / "results.md").read_text(), re.M)}
    anchors = set(re.findall(r"docs/results\.md#([\w-]+)", (ROOT / "README.md").read_text()))
    # "sleep": the sleep results section of docs/results.md, added with its numbers
    missing = sorted(anchors - headings - {"sleep"})
    assert not missing, f"README.md links to sections docs/results.md does not have: {missing}"


# --------------------------------------------------------------------------- commands
_JOBS_WITH_SUB = {"preprocess", "plot", "bench"}


def _code_blocks(text: str) -> list[str]:
    """The shell code blocks of a markdown text (bash, sh, console or untagged)."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
            if lang in ("", "bash", "sh", "shell", "console")]


def _commands(path: Path) -> list[list[str]]:
    """Every ``neuroconv JOB ...`` command of the file's shell code blocks and inline code
    spans, as argv (from the word after ``neuroconv``), continuation lines joined,
    comments dropped."""
    out = []
    text = path.read_text(encoding="utf-8")
    outside = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    inline = [span for span in re.findall(r"`([^`\n]+)`", outside.replace("\n", " ")) if span.startswith("neuroconv ")]
    for block in _code_blocks(text) + inline:
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            for i, w in enumerate(words):
                if w == "neuroconv" and i + 1 < len(words) and not words[i + 1].startswith("-"):
                    out.append(words[i + 1:])
                    break
    return out


#: names that stand for a name of the reader's choosing, in prose and examples
_PLACEHOLDERS = {"my-data"}


def _is_real(argv: list[str]) -> bool:
    """Whether the command names a real job (and source or plot): not ``preprocess NAME``,
    ``preprocess ... --dask`` or ``preprocess / pretrain``."""
    return all(re.fullmatch(r"[a-z][a-z0-9-]*", w) and w not in _PLACEHOLDERS for w in _job_key(argv))


def _job_key(argv: list[str]) -> tuple[str, ...]:
    if argv[0] in _JOBS_WITH_SUB and len(argv) > 1 and not argv[1].startswith("-"):
        return (argv[0], argv[1])
    return (argv[0],)


def _flags(argv: list[str]) -> list[str]:
    return sorted({a.split("=", 1)[0] for a in argv if a.startswith("--") and len(a) > 2})


_HELP_SCRIPT = textwrap.dedent("""
    import contextlib, io, json, sys
    from neuroconv.cli import main
    out = {}
    for key in json.loads(sys.argv[1]):
        text = ""
        for flag in ("--help", "--help-all"):
            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                    rc = main(list(key) + [flag])
            except SystemExit as e:
                rc = e.code
            text += buf.getvalue()
            out.setdefault(" ".join(key), []).append(rc)
        out[" ".join(key)] = {"rc": out[" ".join(key)], "text": text}
    print(json.dumps(out))
""")


def _help_texts(keys) -> dict:
    proc = subprocess.run([sys.executable, "-c", _HELP_SCRIPT, json.dumps(sorted(keys))], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _unknown(commands, helps) -> list[str]:
    bad = []
    for path, argv in commands:
        key = " ".join(_job_key(argv))
        h = helps[key]
        if h["rc"][0] != 0:
            bad.append(f"{path.name}: `neuroconv {key}` is not a command ({h['text'][-300:]})")
            continue
        for flag in _flags(argv):
            if not re.search(re.escape(flag) + r"(?![\w.-])", h["text"]):
                bad.append(f"{path.name}: `neuroconv {' '.join(argv)}`: {flag} is not in `neuroconv {key} --help(-all)`")
    return bad


def test_every_command_in_the_readme_and_the_guide_uses_flags_its_job_has():
    pytest.importorskip("jsonargparse", reason="the brain extra is not installed")
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "docs" / "guide").glob("*.md"))]
    commands = [(path, argv) for path in files for argv in _commands(path)]
    readme = [argv for path, argv in commands if path.name == "README.md"]
    assert {a[0] for a in readme} >= {"preprocess", "pretrain", "decode"}, readme
    # a plugin's keys exist only once it is imported: those commands are checked in
    # test_the_guide_plugin_registers_a_model_and_its_keys
    commands = [(p, a) for p, a in commands if "--plugins" not in a and _is_real(a)]
    # the check itself catches a misspelt key, a flag of another job and an unknown source
    wrong = [(Path("x.md"), ["decode", "--decode.modles", "covconv"]), (Path("x.md"), ["pretrain", "--compare"]),
             (Path("x.md"), ["preprocess", "no-such-source", "--out", "s"]),
             (Path("x.md"), ["decode", "--decode.models", "covconv"])]
    helps = _help_texts({_job_key(a) for _, a in commands + wrong})
    assert len(_unknown(wrong, helps)) == 3, _unknown(wrong, helps)
    bad = _unknown(commands, helps)
    assert not bad, "\n".join(bad)


def test_the_preprocess_guide_names_every_data_source():
    from neuroconv.pipelines.sources import SOURCES

    text = (ROOT / "docs" / "guide" / "preprocess.md").read_text()
    missing = [name for name in SOURCES if f"| `{name}` |" not in text]
    assert not missing, f"docs/guide/preprocess.md has no row for the sources {missing}"


def test_the_guide_plugin_registers_a_model_and_its_keys(tmp_path):
    pytest.importorskip("sklearn", reason="the brain extra is not installed")
    from neuroconv.brain import zoo
    from neuroconv.brain.config import _IMPORTED, import_plugins, job_parser

    text = (ROOT / "docs" / "guide" / "extending.md").read_text()
    code = re.search(r"```python\n(\"\"\"A model \(ours\).*?)```", text, re.S).group(1)
    path = tmp_path / "my_models.py"
    path.write_text(code)
    command = next(a for a in _commands(ROOT / "docs" / "guide" / "extending.md") if "--plugins" in a)
    before = dict(zoo.ZOO)
    try:
        import_plugins([str(path)])
        assert zoo.ZOO["logvar_lr"].traits.family == "ours"
        assert zoo.ZOO["logvar_centroid"].traits.family == "baseline"
        args = [str(path) if a == "my_models.py" else a for a in command[1:]]
        cfg, _, _ = job_parser("decode").parse([a for a in args if a != "--plugins" and a != str(path)])
        assert cfg.decode.logvar_lr.alpha == 0.25
        assert list(cfg.decode.models) == ["logvar_lr", "logvar_centroid", "csp_lda"]
    finally:
        zoo.ZOO.clear()
        zoo.ZOO.update(before)
        _IMPORTED.pop(str(path), None)


def test_the_repository_paths_the_docs_name_exist():
    """A file or folder of the repository named in README.md or the guide (in backticks or
    a link) exists: a renamed file fails here instead of misleading a reader."""
    files = [ROOT / "README.md", ROOT / "docs" / "index.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
    top = ("configs/", "examples/", "tests/", "neuroconv/", "pipelines/", "kernels/", "docs/", ".ci/")
    missing = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        names = re.findall(r"`([^`\s]+)`", text) + re.findall(r"\]\(([^)#\s]+)", text)
        for name in names:
            name = name.split("::")[0].rstrip(".,:;")
            if not name.startswith(top) or any(c in name for c in "*<>{}"):
                continue
            target = ROOT / name if not name.startswith("docs/") or path.parent == ROOT else path.parent / name
            if not (target.exists() or (ROOT / name).exists()):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)
