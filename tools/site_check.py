"""Static checks of a built website: broken internal links and images, and what it loads from outside.

Every ``*.html`` page under the site folder is parsed (stdlib ``html.parser``). An internal link
(no scheme, not ``mailto:``) must resolve to a file of the site, and its ``#anchor`` to an ``id``
(or ``name``) in the target page; an internal image must be a file of the site. External links
are listed, never fetched. External *resources* (scripts, stylesheets, images, fonts a page loads
from the network) are listed too: an offline site has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class ParsedPage:
    """What a page links to and loads, and the ids its anchors can point at."""

    links: list[str] = field(default_factory=list)       # <a href>
    images: list[str] = field(default_factory=list)      # <img src>
    resources: list[str] = field(default_factory=list)   # <script src>, <link href> (css, fonts...)
    ids: set[str] = field(default_factory=set)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.page.ids.add(values[key])
        if tag == "a" and values.get("href"):
            self.page.links.append(values["href"])
        elif tag == "img" and values.get("src"):
            self.page.images.append(values["src"])
        elif tag == "script" and values.get("src"):
            self.page.resources.append(values["src"])
        elif tag == "link" and values.get("href") and values.get("rel") != "canonical":
            self.page.resources.append(values["href"])


@cache
def _parse_cached(path: Path, mtime: float) -> ParsedPage:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.page


def parse_page(path: Path) -> ParsedPage:
    """The links, images, resources and ids of one HTML file."""
    return _parse_cached(Path(path).resolve(), Path(path).stat().st_mtime)


def is_external(url: str) -> bool:
    """A URL with a scheme or a host (``https:``, ``//cdn``, ``mailto:``, ``data:``)."""
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)


def html_pages(site: Path) -> list[Path]:
    """Every ``*.html`` file of the site, sorted, except the theme's template fragments in _static."""
    return sorted(path for path in Path(site).rglob("*.html") if "_static" not in path.parts)


def _resolve(site: Path, page: Path, url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def broken_links(site: Path) -> list[str]:
    """``page -> href (why)`` for every internal link whose file or anchor the site lacks."""
    site = Path(site).resolve()
    broken = []
    for page in html_pages(site):
        for href in parse_page(page).links:
            if is_external(href) or href.startswith("javascript:"):
                continue
            target, anchor = _resolve(site, page, href)
            name = page.relative_to(site)
            if not target.is_file() or site not in target.parents:
                broken.append(f"{name} -> {href} (no such file)")
            elif anchor and target.suffix == ".html" and anchor not in parse_page(target).ids:
                broken.append(f"{name} -> {href} (no id {anchor!r} in {target.name})")
    return broken


def missing_images(site: Path) -> list[str]:
    """``page -> src`` for every internal image that is not a file of the site."""
    site = Path(site).resolve()
    missing = []
    for page in html_pages(site):
        for src in parse_page(page).images:
            if not is_external(src) and not _resolve(site, page, src)[0].is_file():
                missing.append(f"{page.relative_to(site)} -> {src}")
    return missing


def external(site: Path) -> dict[str, set[str]]:
    """The external URLs the site mentions: ``links`` (not fetched), ``images`` and ``resources``
    (both loaded by a browser: an offline site has none)."""
    found: dict[str, set[str]] = {"links": set(), "images": set(), "resources": set()}
    for page in html_pages(site):
        parsed = parse_page(page)
        for kind, urls in (("links", parsed.links), ("images", parsed.images),
                           ("resources", parsed.resources)):
            found[kind].update(url for url in urls
                               if is_external(url) and not url.startswith(("data:", "javascript:")))
    return found
