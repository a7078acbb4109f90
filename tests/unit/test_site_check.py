"""tools/site_check.py on a small hand-made site: every kind of broken link and image is found."""

from tools import site_check

PAGE = """<html><head>
<script src="_static/local.js"></script><script src="https://cdn.example/mathjax.js"></script>
<link rel="stylesheet" href="_static/theme.css"><link rel="canonical" href="https://site.example/">
</head><body><h1 id="top">Home</h1>
<a href="#top">ok</a> <a href="#nowhere">bad anchor</a>
<a href="notebooks/a.html#section-2">ok</a> <a href="notebooks/a.html#gone">bad anchor elsewhere</a>
<a href="notebooks/missing.html">missing page</a> <a href="notebooks/">folder with index</a>
<a href="https://colab.research.google.com/x">external</a> <a href="mailto:a@b.c">mail</a>
<a href="javascript:void(0)">js</a> <a href="notebooks/a%20b.html">escaped</a>
<img src="_images/plot.png"> <img src="_images/gone.png"> <img src="https://badge.example/b.svg">
<img src="data:image/png;base64,AAAA">
</body></html>"""


def make_site(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "notebooks" / "a.html").write_text('<h2 id="section-2">2</h2><a name="old">x</a>'
                                                   '<a href="../index.html#top">back</a>')
    (tmp_path / "notebooks" / "a b.html").write_text("<p>spaces</p>")
    (tmp_path / "notebooks" / "index.html").write_text("<p>folder</p>")
    (tmp_path / "_images" / "plot.png").write_bytes(b"png")
    (tmp_path / "_static" / "fragment.html").write_text('<a href="nowhere.html">template</a>')
    return tmp_path


def test_html_pages_leave_out_theme_fragments(tmp_path):
    site = make_site(tmp_path)
    assert [p.relative_to(site).as_posix() for p in site_check.html_pages(site)] == [
        "index.html", "notebooks/a b.html", "notebooks/a.html", "notebooks/index.html"]


def test_parse_page_collects_links_images_resources_and_ids(tmp_path):
    page = site_check.parse_page(make_site(tmp_path) / "notebooks" / "a.html")
    assert page.ids == {"section-2", "old"} and page.links == ["../index.html#top"]
    home = site_check.parse_page(tmp_path / "index.html")
    assert "_static/theme.css" in home.resources and "https://site.example/" not in home.resources
    assert len(home.images) == 4


def test_broken_links_names_missing_files_and_missing_anchors(tmp_path):
    assert site_check.broken_links(make_site(tmp_path)) == [
        "index.html -> #nowhere (no id 'nowhere' in index.html)",
        "index.html -> notebooks/a.html#gone (no id 'gone' in a.html)",
        "index.html -> notebooks/missing.html (no such file)"]


def test_missing_images_and_what_the_site_loads_from_outside(tmp_path):
    site = make_site(tmp_path)
    assert site_check.missing_images(site) == ["index.html -> _images/gone.png"]
    found = site_check.external(site)
    assert found["images"] == {"https://badge.example/b.svg"}
    assert found["resources"] == {"https://cdn.example/mathjax.js"}
    assert found["links"] == {"https://colab.research.google.com/x", "mailto:a@b.c"}


def test_is_external():
    assert site_check.is_external("https://a.b/c") and site_check.is_external("//cdn.x/y.js")
    assert site_check.is_external("mailto:x@y.z")
    assert not site_check.is_external("../a.html#b") and not site_check.is_external("#top")
