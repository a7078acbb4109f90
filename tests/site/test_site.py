"""The course website: built from the committed notebooks (tools/build_site.py, nothing executed),
checked statically (links, images, nothing loaded from the network) and opened page by page in a
headless Chromium with every host name unresolvable: each notebook page renders its cells, its
plots load, its maths is typeset by the bundled MathJax, no script fails. Screenshots of the home
page, the glossary and one notebook page (its top, and its first plot) are saved to
``$COURSE_ARTIFACTS_DIR/site`` (default ``build/site-screenshots``), with ``site-test.json``
(pages_rendered, broken_links, build_s, ...)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from helpers import env, nbtools, sysdeps
from tools import build_site, headless, site_check

ROOT = env.course_root()
INSTALLABLE = os.geteuid() == 0 and shutil.which("apt-get") is not None
BUILD_LIMIT_S = 120            # the budget for a build on 2 cores
SHOWCASE = "04_quantize_post_training"   # the notebook page photographed (a table, plots, maths)
PLAIN_QUOTES = str.maketrans("\u2018\u2019\u201c\u201d", "''\"\"")
WAIT_FOR_PAGE = """(async () => {
  await Promise.all([...document.images].map(
    i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const main = document.querySelector('main') || document.body;
  return {
    h1: (main.querySelector('h1') || {}).textContent || '',
    cells: document.querySelectorAll('div.cell').length,
    outputImages: document.querySelectorAll('.cell_output img').length,
    images: [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]),
    maths: document.querySelectorAll('mjx-container').length,
    mathSources: document.querySelectorAll('span.math, div.math').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    captions: [...document.querySelectorAll('nav.bd-links p.caption .caption-text')].map(
      e => e.textContent.trim()),
    resultsRows: document.querySelectorAll('.course-results table tbody tr').length,
    tablesScrollingSideways: [...document.querySelectorAll('.pst-scrollable-table-container')].filter(
      w => w.scrollWidth > w.clientWidth + 1).length,
    navLinks: [...document.querySelectorAll('nav.bd-links a.reference.internal')].map(
      a => a.getAttribute('href')),
  };
})()"""


def artifacts_dir() -> Path:
    """Where the screenshots and numbers go: $COURSE_ARTIFACTS_DIR/site, else build/site-screenshots."""
    base = os.environ.get("COURSE_ARTIFACTS_DIR")
    folder = Path(base) / "site" if base else ROOT / "build" / "site-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    start = time.perf_counter()
    html = build_site.build(tmp_path_factory.mktemp("site") / "site")
    return html, time.perf_counter() - start


@pytest.fixture(scope="module")
def chromium():
    if sysdeps.find("chromium") is None and not INSTALLABLE:
        pytest.skip("Chromium is not installed and cannot be installed here (not root with apt): "
                    "install it to test the website")
    return sysdeps.ensure("chromium")   # where the README's commands run (CI), it must be there


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def describe(exception: dict) -> str:
    """A JavaScript exception as DevTools reports it: the message and where."""
    return (f"{exception.get('exception', {}).get('description', exception.get('text', ''))[:300]} "
            f"({exception.get('url', '')}:{exception.get('lineNumber', '')})")


def image_outputs(notebook: dict) -> int:
    return sum(1 for cell in nbtools.code_cells(notebook) for output in cell.get("outputs", [])
               if any(kind.startswith("image/") for kind in output.get("data", {})))


@pytest.fixture(scope="module")
def rendered(built, chromium):
    """Every page of the site opened in Chromium, offline: what each page showed and requested."""
    html, _ = built
    pages = {}
    with headless.Chromium(chromium, width=1280, height=1000, offline=True) as browser:
        tab = browser.open()
        for path in site_check.html_pages(html):
            tab.navigate(path.as_uri())
            seen = tab.evaluate(WAIT_FOR_PAGE)
            seen["requested"] = tab.requested_urls()
            seen["exceptions"] = [describe(event["params"]["exceptionDetails"]) for event in browser.events
                                  if event.get("method") == "Runtime.exceptionThrown"]
            pages[path.relative_to(html).as_posix()] = seen
            if path.name in ("index.html", "glossary.html", f"{SHOWCASE}.html"):
                name = {"index.html": "home", "glossary.html": "glossary"}.get(path.name, SHOWCASE)
                tab.screenshot(artifacts_dir() / f"{name}.png")
                if name == SHOWCASE:   # and its first plot, scrolled into view
                    tab.evaluate("document.querySelector('.cell_output img')"
                                 ".scrollIntoView({block: 'center'})")
                    tab.screenshot(artifacts_dir() / f"{name}-plot.png")
    return pages


def test_the_site_builds_from_every_committed_notebook_in_time(built):
    html, seconds = built
    assert seconds < BUILD_LIMIT_S, f"the build took {seconds:.0f} s"
    for path in notebooks():
        assert (html / "notebooks" / f"{path.stem}.html").is_file(), path.name
    print(f"\nsite built in {seconds:.0f} s: {len(site_check.html_pages(html))} pages")


def test_no_broken_internal_link_or_image(built):
    html, _ = built
    links = sum(len(site_check.parse_page(page).links) for page in site_check.html_pages(html))
    assert links > 40 * len(notebooks()), "the checker saw too few links to be checking anything"
    assert site_check.broken_links(html) == []
    assert site_check.missing_images(html) == []
    print(f"\nexternal links (not fetched): {sorted(site_check.external(html)['links'])}")


def _outputs_html(page: str) -> list[str]:
    """The HTML of each cell output on a notebook page."""
    return [part.split('<div class="cell docutils')[0] for part in page.split('<div class="cell_output')[1:]]


def test_markdown_that_a_cell_displays_is_rendered_with_its_tables(built):
    html, _ = built
    checked = 0
    for path in notebooks():
        cells = nbtools.code_cells(nbtools.read_notebook(path))
        markdown = [output["data"]["text/markdown"] for cell in cells
                    for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {})]
        tables = sum("|---" in "".join(text) for text in markdown)
        if not tables:
            continue
        outputs = _outputs_html((html / "notebooks" / f"{path.stem}.html").read_text(encoding="utf-8"))
        assert sum(part.count('<table class="table">') for part in outputs) >= tables, path.name
        assert not any(marker in part for part in outputs for marker in ("|---", "|—|")), path.name
        checked += 1
    assert checked >= 1, "no notebook displays a markdown table: nothing was checked"


def test_nothing_is_loaded_from_the_network(built):
    html, _ = built
    found = site_check.external(html)
    assert found["resources"] == set() and found["images"] == set(), found
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_navigation_groups_the_notebooks_by_part(rendered):
    parts = build_site.notebook_parts(ROOT)
    home = rendered["index.html"]
    assert home["captions"] == [part for part, _ in parts] + ["Reference"]
    linked = {Path(href.split("#")[0]).stem for href in home["navLinks"]}
    assert {path.stem for path in notebooks()} <= linked


def test_the_home_page_shows_the_readmes_results_and_the_reference_pages_fit_the_screen(rendered):
    readme_rows = build_site.readme_section((ROOT / "README.md").read_text(), "results").splitlines()[2:]
    assert rendered["index.html"]["resultsRows"] == len(readme_rows) > 0
    for name in ("index.html", "pitfalls.html", "glossary.html"):
        assert rendered[name]["tablesScrollingSideways"] == 0, name
    assert rendered["pitfalls.html"]["h1"].startswith("Index of pitfall boxes")


def test_every_notebook_page_renders_offline_with_its_plots_and_maths(rendered):
    for path in notebooks():
        notebook = nbtools.read_notebook(path)
        page = rendered[f"notebooks/{path.stem}.html"]
        title = nbtools.cell_source(notebook["cells"][0]).splitlines()[0].removeprefix("# ")
        shown = page["h1"].strip().rstrip("#").strip().translate(PLAIN_QUOTES)   # MyST's smart quotes
        assert shown == title, path.name
        assert page["cells"] == len(nbtools.code_cells(notebook)), path.name
        assert page["outputImages"] == image_outputs(notebook), path.name
        assert all(width > 0 for _, width in page["images"]), (path.name, page["images"])
        # every formula Sphinx wrote (span.math, div.math) typeset by MathJax into an mjx-container
        assert page["maths"] >= page["mathSources"] and page["mathErrors"] == 0, (path.name, page["maths"])
        assert page["exceptions"] == [], (path.name, page["exceptions"])
    with_maths = [name for name, page in rendered.items() if page["mathSources"]]
    assert len(with_maths) >= 3, f"maths on too few pages to test MathJax: {with_maths}"
    for name, page in rendered.items():
        assert all(url.startswith(("file:", "data:", "about:")) for url in page["requested"]), (
            name, [url for url in page["requested"] if not url.startswith(("file:", "data:"))])


def test_screenshots_and_numbers_are_saved(built, rendered):
    folder = artifacts_dir()
    for name in ("home", "glossary", SHOWCASE, f"{SHOWCASE}-plot"):
        shot = folder / f"{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, shot
    html, seconds = built
    numbers = {"pages_rendered": sum(name.startswith("notebooks/") and page["cells"] > 0
                                     for name, page in rendered.items()),
               "notebooks": len(notebooks()), "pages_opened": len(rendered),
               "broken_links": len(site_check.broken_links(html)), "build_s": round(seconds, 1)}
    (folder / "site-test.json").write_text(json.dumps(numbers, indent=1) + "\n")
    assert numbers["pages_rendered"] == numbers["notebooks"] and numbers["broken_links"] == 0
    print(f"\nscreenshots and site-test.json in {folder}: {numbers}")
