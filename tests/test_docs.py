"""The documentation site: every public name is in the API reference, the README stays a front page,
and ``mkdocs build --strict`` is clean.

The API check reads the ``::: target`` directives of ``docs/api/*.md`` with griffe (the loader
mkdocstrings uses, with the same extension), so it sees what the reference renders, not a list kept
by hand. The build test also reads the built site's ``objects.inv``.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import control_dl

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
DIRECTIVE = re.compile(r"^::: *(\S+)\n((?:[ \t]+\S.*\n|[ \t]*\n)*)", re.M)
#: modules under control_dl that are not API (the command line has its own --help)
NOT_API = {"cli"}


def reexported_names() -> set[str]:
    """Names bound in ``control_dl/__init__.py`` by ``from . import x as x`` / ``from .m import X as X``."""
    tree = ast.parse((ROOT / "control_dl" / "__init__.py").read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if not (alias.asname or alias.name).startswith("_")
    }


def public_submodules() -> set[str]:
    """``control_dl.<name>`` for every public package and module (private ones start with ``_``)."""
    names = {p.name for p in (ROOT / "control_dl").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in (ROOT / "control_dl").glob("*.py") if p.stem != "__init__"}
    return {f"control_dl.{n}" for n in names if not n.startswith("_") and n not in NOT_API}


def canonical_path(obj: object) -> str:
    """Where an object is defined: ``module.qualname`` (a module's own name)."""
    if inspect.ismodule(obj):
        return obj.__name__
    return f"{obj.__module__}.{obj.__qualname__}"


def directives() -> list[tuple[str, dict]]:
    """``(target, options)`` of every mkdocstrings directive in ``docs/api/*.md``."""
    yaml = pytest.importorskip("yaml")
    found = []
    for page in sorted(API.glob("*.md")):
        for target, block in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            options = (yaml.safe_load(_dedent(block)) or {}).get("options", {})
            found.append((target, options))
    return found


def _dedent(block: str) -> str:
    lines = [line for line in block.splitlines() if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
    return "\n".join(line[indent:] for line in lines)


def test_all_lists_exactly_the_reexported_names():
    assert sorted(control_dl.__all__) == sorted(set(control_dl.__all__)), "duplicates in __all__"
    reexported = reexported_names()
    assert set(control_dl.__all__) == reexported, (
        f"control_dl/__init__.py: __all__ lacks {sorted(reexported - set(control_dl.__all__))}, "
        f"lists unexported {sorted(set(control_dl.__all__) - reexported)}"
    )
    for name in control_dl.__all__:
        assert hasattr(control_dl, name), name


def test_api_reference_renders_every_public_name_and_module():
    griffe = pytest.importorskip("griffe")
    pytest.importorskip("griffe_public_redundant_aliases")
    extensions = griffe.load_extensions("griffe_public_redundant_aliases")
    package = griffe.load("control_dl", search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True)
    documented: set[str] = set()
    targets: set[str] = set()
    for target, options in directives():
        obj = package if target == "control_dl" else package[target.removeprefix("control_dl.")]
        targets.add(obj.path)
        documented.add(obj.path)
        if obj.is_module:
            explicit = options.get("members")
            for name, member in obj.members.items():
                if explicit is not None and explicit is not True:
                    shown = name in explicit
                else:
                    shown = member.is_public and not member.is_module
                if shown:
                    documented.add(member.final_target.path if member.is_alias else member.path)
    missing = []
    for name in control_dl.__all__:
        path = canonical_path(getattr(control_dl, name))
        if path not in (targets if inspect.ismodule(getattr(control_dl, name)) else documented):
            missing.append(f"{name} ({path})")
    assert not missing, f"not in the API reference: {missing}; re-export them in a documented module (X as X)"
    unpaged = public_submodules() - targets
    assert not unpaged, (
        f"public modules without a page: {unpaged}; add docs/api/<name>.md with '::: <module>' and a nav line"
    )


def test_readme_is_a_front_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 12_000, f"README.md is {size} bytes (at most 12 kB: move material into docs/)"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text and "## Headline comparison" in text
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), f"README links to missing {link}"


def read_inventory(path: Path) -> set[str]:
    """Identifiers in a Sphinx ``objects.inv`` (version 2: four header lines, then zlib)."""
    header = path.read_bytes().split(b"\n", 4)
    return {line.split(" ", 1)[0] for line in zlib.decompress(header[4]).decode().splitlines() if line}


def test_mkdocs_build_strict_is_clean(tmp_path):
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    mkdocs = str(Path(sys.executable).parent / "mkdocs")
    run = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "WARNING" not in log, log
    inventory = read_inventory(tmp_path / "site" / "objects.inv")
    missing = [name for name in control_dl.__all__ if canonical_path(getattr(control_dl, name)) not in inventory]
    assert not missing, f"public names missing from the built reference: {missing}"
    assert not public_submodules() - inventory
    for example in (ROOT / "examples").glob("*.py"):
        if example.stem not in {"_shared", "make_gallery"}:
            assert (tmp_path / "site" / "tutorials" / example.stem / "index.html").exists(), example.stem


def test_the_extending_guides_field_example_prints_what_it_says():
    """The guide's user field (Rotated) shows J on the three backends in a comment; a user found the
    comment out of date (0.2235 against 0.7189): the block is run and the numbers compared."""
    guide = (ROOT / "docs" / "guide" / "extending.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", guide, flags=re.S) if "class Rotated" in b]
    *code, shown = block.rstrip().splitlines()
    expression = code.pop()
    namespace: dict = {}
    exec("\n".join(code), namespace)  # noqa: S102 — the guide's own example
    values = eval(expression, namespace)  # noqa: S307
    printed = [float(v) for v in re.match(r"# \[(.*?)\]", shown).group(1).split(",")]
    np.testing.assert_allclose(values, printed, rtol=1e-12)
