"""Generate the README's chapter table and *results at a glance* from the notebooks and results/.

Usage: python tools/update_readme.py           rewrite both sections of README.md
       python tools/update_readme.py --check   exit 1 if the README is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from helpers import nbtools, results  # noqa: E402

SECTIONS = ("chapters", "results")
LEARN_ROW = re.compile(r"^\| You will learn \| (.*) \|$", re.MULTILINE)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def render_results(records: dict[str, dict]) -> str:
    """One row per metric, grouped by notebook, with the date of the full run."""
    if not records:
        return "_No full-mode results recorded yet._"
    lines = ["| notebook | metric | value |", "|---|---|---|"]
    for stem, record in records.items():
        for i, (name, value) in enumerate(record["metrics"].items()):
            label = f"[{stem}](notebooks/{stem}.ipynb) ({record['date'][:10]})" if i == 0 else ""
            lines.append(f"| {label} | `{name}` | {_show(value)} |")
    return "\n".join(lines)


def _runtime(stamp: dict | None) -> str:
    if not stamp:
        return "not yet run"
    full = stamp["runtime_full_s"]
    full_text = f"{full / 60:.1f} min" if full >= 90 else f"{full:.0f} s"
    return f"{full_text} (smoke {stamp['runtime_smoke_s']:.0f} s)"


def render_chapters(config: dict) -> str:
    """The chapter table: number and title, what it teaches, measured runtime, Colab badge."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        return "_No notebooks yet._"
    lines = ["| # | notebook | you will learn | runtime, 2-core CPU | |", "|---|---|---|---|---|"]
    for path in paths:
        notebook = nbtools.read_notebook(path)
        header = nbtools.cell_source(notebook["cells"][0])
        title = header.splitlines()[0].removeprefix("# ").split(" · ", 1)[-1]
        learn = LEARN_ROW.search(header)
        badge = (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"({nbtools.colab_url(config['github_repo'], config['branch'], path.name)})")
        lines.append(f"| {path.name.split('_', 1)[0]} | [{title}](notebooks/{path.name}) | "
                     f"{learn.group(1) if learn else ''} | {_runtime(nbtools.stamp(notebook))} | "
                     f"{badge} |")
    return "\n".join(lines)


def updated_readme(text: str) -> str:
    """``text`` with every generated section replaced by its current content."""
    content = {"chapters": render_chapters(nbtools.course_config(ROOT)),
               "results": render_results(results.load_all())}
    for section in SECTIONS:
        start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
        if start not in text or end not in text:
            raise ValueError(f"README.md lacks the markers {start} and {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{content[section]}\n{end}{tail}"
    return text


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = updated_readme(text)
    if "--check" in argv:
        if new != text:
            print("README.md is out of date: run python tools/update_readme.py")
            return 1
        return 0
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
