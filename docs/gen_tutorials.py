"""Generate the Tutorials section from ``examples/*.py`` (run by mkdocs-gen-files at build time).

One page per example: its docstring as the introduction, the command that runs it, the figures it
draws (from ``docs/gallery/``, listed in ``examples/make_gallery.py``'s ``GALLERY``) and its code.
Nothing is executed, so the build stays offline and fast; ``make gallery`` refreshes the figures.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY_DIR = ROOT / "docs" / "gallery"
#: reading order; examples not listed follow alphabetically
ORDER = [
    "demo",
    "ring_dimensions",
    "spiral",
    "regularisation",
    "initialisations",
    "square_1d",
    "morse",
    "invertible",
    "turnpike",
    "turnpike_claim",
    "training_dynamics",
    "mlp_vs_resnet",
    "emsa_sin",
]
#: scripts in examples/ that are tooling, not tutorials
SKIP = {"_shared", "make_gallery"}


def gallery() -> dict[str, list[str]]:
    """Example name -> the gallery PNGs it draws, read from ``examples/make_gallery.py``.

    Returns
    -------
    dict
        ``{example: [file name in docs/gallery/, ...]}``.
    """
    tree = ast.parse((EXAMPLES / "make_gallery.py").read_text(encoding="utf-8"))
    figures: dict[str, list[str]] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "GALLERY" and node.value is not None:
            for name, (example, _) in ast.literal_eval(node.value).items():
                if (GALLERY_DIR / name).exists():
                    figures.setdefault(example, []).append(name)
    return figures


def markdown_of(docstring: str) -> str:
    """A docstring's reStructuredText literals as Markdown code spans.

    Parameters
    ----------
    docstring : str
        The module docstring.

    Returns
    -------
    str
        The same text with ````x```` written as ```x```.
    """
    return re.sub(r"``([^`]+)``", r"`\1`", docstring)


def link_examples(text: str, names: list[str]) -> str:
    """Turn mentions of another example (``spiral.py``) in prose into links to its tutorial page.

    Parameters
    ----------
    text : str
        Markdown prose.
    names : list of str
        Examples that have a tutorial page.

    Returns
    -------
    str
        The text with ``[spiral.py](spiral.md)`` links.
    """
    return re.sub(r"(?<![/`\w])(\w+)\.py\b", lambda m: f"[{m[0]}]({m[1]}.md)" if m[1] in names else m[0], text)


def page(name: str, source: str, figures: list[str], names: list[str]) -> tuple[str, str]:
    """The Markdown page of one example and its one-line summary.

    Parameters
    ----------
    name : str
        Example name (file stem).
    source : str
        The script's text.
    figures : list of str
        Gallery PNGs the example draws.
    names : list of str
        All examples with a tutorial page (for cross-links).

    Returns
    -------
    tuple of str
        ``(markdown, summary)``.
    """
    module = ast.parse(source)
    docstring = ast.get_docstring(module) or name
    title, _, body = docstring.partition("\n")
    title = markdown_of(title.strip().rstrip("."))
    code = source
    if module.body and isinstance(module.body[0], ast.Expr) and isinstance(module.body[0].value, ast.Constant):
        code = "\n".join(source.splitlines()[module.body[0].end_lineno :]).strip("\n")
    lines = [f"# {title}", "", link_examples(markdown_of(body.strip()), names), "", "## Run it", "", "```bash"]
    lines.append(f"python examples/{name}.py           # full size; --out DIR chooses where it writes")
    if "--small" in source or "setup(" in source:
        lines.append(f"python examples/{name}.py --small   # a toy-size check that it runs (figures not meaningful)")
    lines += ["```", ""]
    if figures:
        lines += ["## What it draws", ""]
        lines += [f"![{name}: {figure}](../gallery/{figure})" for figure in figures]
        lines += ["", "(Regenerate with `make gallery`.)", ""]
    lines += [f"## The script: `examples/{name}.py`", "", "```python", code, "```", ""]
    return "\n".join(lines), title


def main() -> None:
    """Write ``tutorials/<example>.md``, ``tutorials/index.md`` and the section's ``SUMMARY.md``."""
    figures = gallery()
    names = sorted(p.stem for p in EXAMPLES.glob("*.py") if p.stem not in SKIP)
    names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    summary = ["* [Overview](index.md)"]
    index = [
        "# Tutorials",
        "",
        "Every script in `examples/` is a tutorial: model, solver and run in separate blocks of a short",
        "script. Each page below shows the script's purpose, how to run it, the figure it draws and its",
        "code. `make examples` runs them all; `--small` (or `CONTROL_DL_SMALL=1`) runs any at toy size.",
        "",
        "| tutorial | what it shows |",
        "|---|---|",
    ]
    for name in names:
        text, title = page(name, (EXAMPLES / f"{name}.py").read_text(encoding="utf-8"), figures.get(name, []), names)
        with mkdocs_gen_files.open(f"tutorials/{name}.md", "w") as handle:
            handle.write(text)
        mkdocs_gen_files.set_edit_path(f"tutorials/{name}.md", f"../examples/{name}.py")
        summary.append(f"* [{name}]({name}.md)")
        index.append(f"| [`{name}.py`]({name}.md) | {title} |")
    with mkdocs_gen_files.open("tutorials/index.md", "w") as handle:
        handle.write("\n".join(index) + "\n")
    with mkdocs_gen_files.open("tutorials/SUMMARY.md", "w") as handle:
        handle.write("\n".join(summary) + "\n")


main()
