"""tools/build_site.py: the staged Jupyter Book source (parts, toc, home page, pitfall index,
the notebooks as the site shows them). The build itself and the browser: tests/site."""

import json
import re
import shutil

import pytest
import yaml

from helpers import env, nbtools
from tools import build_site

ROOT = env.course_root()
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}


def write_notebook(path, cells):
    for number, cell in enumerate(cells):
        cell["id"] = f"c{number}"
    path.write_text(json.dumps({"cells": cells, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}))
    return path


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text):
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [], "execution_count": None}


@pytest.fixture
def course(tmp_path):
    """A course folder with notebooks of two parts, a lettered part, and one no chapter claims."""
    (tmp_path / "notebooks").mkdir()
    for name in ("01_train.ipynb", "00_start.ipynb", "11b_load.ipynb", "11_serve.ipynb", "99_extra.ipynb"):
        number = name.split("_")[0]
        header = (f"# {number} · Title {number}\n\n| At a glance | |\n|---|---|\n"
                  f"| You will learn | topic {number} |\n")
        write_notebook(tmp_path / "notebooks" / name, [md(header), code("x = 1")])
    return tmp_path


def test_notebooks_are_grouped_by_part_in_order_and_unclaimed_ones_come_last(course):
    parts = build_site.notebook_parts(course)
    assert [(part, [p.name for p in paths]) for part, paths in parts] == [
        ("Foundations", ["00_start.ipynb", "01_train.ipynb"]),
        ("Serving", ["11_serve.ipynb", "11b_load.ipynb"]),
        (build_site.OTHER_PART, ["99_extra.ipynb"])]


def test_the_toc_lists_every_notebook_under_its_part_then_the_reference_pages(course):
    toc = yaml.safe_load(build_site.render_toc(build_site.notebook_parts(course)))
    assert toc["format"] == "jb-book" and toc["root"] == "index"
    assert [part["caption"] for part in toc["parts"]] == ["Foundations", "Serving", build_site.OTHER_PART,
                                                          "Reference"]
    assert [c["file"] for c in toc["parts"][1]["chapters"]] == ["notebooks/11_serve", "notebooks/11b_load"]
    assert [c["file"] for c in toc["parts"][-1]["chapters"]] == list(build_site.REFERENCE_PAGES)


def test_readme_section_takes_the_text_between_the_markers():
    text = "a\n<!-- results:start -->\n| x | y |\n<!-- results:end -->\nb"
    assert build_site.readme_section(text, "results") == "| x | y |"
    with pytest.raises(ValueError, match="chapters:start"):
        build_site.readme_section(text, "chapters")


def test_the_home_page_has_the_title_every_notebook_by_part_and_the_results(course):
    readme = ("# The Course\n\nIntro paragraph.\n\n## Chapters\n\nignored\n\n"
              "<!-- results:start -->\n| notebook | metric | value |\n| a | b | 1 |\n<!-- results:end -->\n")
    page = build_site.render_index(readme, build_site.notebook_parts(course))
    assert page.startswith("# The Course\n\nIntro paragraph.\n") and "ignored" not in page
    order = [page.index(f"### {part}") for part in ("Foundations", "Serving", build_site.OTHER_PART)]
    assert order == sorted(order)
    assert "| 11b | [Title 11b](notebooks/11b_load.ipynb) | topic 11b |" in page
    assert page.index("## Results at a glance") < page.index("| a | b | 1 |")


def test_pitfall_boxes_are_found_in_every_form_with_their_section(tmp_path):
    path = write_notebook(tmp_path / "05_x.ipynb", [
        md("# 05 · X\n\n## 1. Setup\n\n> **Pitfall: the snippet that pickles a model.** It runs code."),
        code("# **Pitfall: in code, not a box.**"),
        md("## 2. Serving\n\nText.\n\n**Pitfall.** `from_keras(model)` fails on Keras 3; here is why.\n"
           "More text."),
        md("## Pitfalls: the chapter's code\n\n> **Pitfall: `tf.Session()`.** Gone\n> in TF2."),
        md("## 7. Pitfall: invented server classes\n\nBody."),
        md("**Pitfalls** in general are not a box, nor is a mention of a pitfall."),
    ])
    boxes = build_site.pitfall_boxes(path)
    assert [b.anchor for b in boxes] == ["1-setup", "2-serving", "pitfalls-the-chapters-code",
                                         "7-pitfall-invented-server-classes"]
    assert [(b.section, b.title) for b in boxes] == [
        ("1. Setup", "the snippet that pickles a model"),
        ("2. Serving", "`from_keras(model)` fails on Keras 3"),
        ("Pitfalls: the chapter's code", "`tf.Session()`"),
        ("(its own section)", "invented server classes")]
    page = build_site.render_pitfalls([("Part", [path])])
    assert "| [05](notebooks/05_x.ipynb#1-setup) | 1. Setup | the snippet that pickles a model |" in page
    assert "4 pitfall boxes in 1 notebooks." in page


def test_heading_anchors_follow_myst_from_the_markdown():
    assert build_site.heading_anchor("7. Pitfall: invented classes, `model.initialize()`, and more") == (
        "7-pitfall-invented-classes-modelinitialize-and-more")
    assert build_site.heading_anchor("The [**KV** cache](https://x.y/z), measured") == "the-kv-cache-measured"


def test_the_site_shows_a_local_badge_and_folds_only_the_setup_cell():
    setup = nbtools.SETUP_CELL.format(keras="3", github_repo="o/r", branch="main")
    notebook = {"cells": [md(f"# 01 · T\n\n[![Open in Colab]({BADGE})](https://colab.research.google.com/x)"),
                          code(setup), code("print(1)")], "metadata": {}}
    shown = build_site.site_notebook(notebook)
    assert BADGE in notebook["cells"][0]["source"] and "tags" not in notebook["cells"][1]["metadata"]
    assert f"({build_site.LOCAL_BADGE})" in shown["cells"][0]["source"]
    assert "https://colab.research.google.com/x" in shown["cells"][0]["source"]   # the link stays
    assert shown["cells"][1]["metadata"]["tags"] == ["hide-input"]
    assert "tags" not in shown["cells"][2]["metadata"]


def test_mathjax_comes_from_an_installed_package():
    folder = build_site.mathjax_folder()
    assert (folder / "tex-mml-chtml.js").stat().st_size > 500_000
    assert (folder / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_the_staged_source_has_every_notebook_and_no_static_folder(tmp_path):
    source = tmp_path / "src"
    parts = build_site.stage(source)
    staged = sorted(p.name for p in (source / "notebooks").glob("*.ipynb"))
    assert staged == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sum(len(paths) for _, paths in parts) == len(staged)
    # Jupyter Book would add every .js file of the static folders to every page if _static existed
    assert not (source / "_static").exists()
    assert (source / "_vendor" / "mathjax" / "tex-mml-chtml.js").is_file()
    toc = (source / "_toc.yml").read_text()
    assert all(f"notebooks/{name.removesuffix('.ipynb')}" in toc for name in staged)
    config = yaml.safe_load((source / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert "sphinx_thebe" not in config["sphinx"]["config"]["extensions"]


def test_hand_written_pages_link_only_to_notebooks_that_exist():
    for page in (ROOT / build_site.BOOK).glob("*.md"):
        targets = re.findall(r"\]\((notebooks/[^)#]+)", page.read_text())
        assert targets, page.name
        missing = [target for target in targets if not (ROOT / target).is_file()]
        assert missing == [], (page.name, missing)


def test_a_build_that_warns_fails_and_says_why(course, tmp_path):
    """A link to a page that does not exist fails the build (Sphinx's -W), naming the target."""
    shutil.copytree(ROOT / build_site.BOOK, course / build_site.BOOK)
    (course / build_site.BOOK / "glossary.md").write_text("# Glossary\n\n[gone](notebooks/42_gone.ipynb)\n")
    (course / "README.md").write_text("# T\n\nIntro.\n\n<!-- results:start -->\n| a | b | c |\n"
                                      "|---|---|---|\n<!-- results:end -->\n")
    with pytest.raises(RuntimeError, match=r"42_gone\.ipynb") as failed:
        build_site.build(tmp_path / "out", root=course, timeout_s=300)
    assert str(failed.value).count("WARNING") == 1, "the bad link is the only problem of this book"


def test_results_file_links_point_at_the_repository_not_at_site_pages():
    from helpers import nbtools

    config = nbtools.course_config(build_site.ROOT)
    table = "| [01_x](notebooks/01_x.ipynb) | `a` 1 | [3 metrics](results/01_x.json) |"
    linked = build_site.repository_links(table)
    repository = f"https://github.com/{config['github_repo']}/blob/{config['branch']}"
    assert f"[3 metrics]({repository}/results/01_x.json)" in linked
    assert "(notebooks/01_x.ipynb)" in linked          # pages stay relative
