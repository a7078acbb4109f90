"""tools/headless.py: a real headless Chromium over the DevTools pipe (where Chromium is installed;
tests/site/test_site.py insists on it where the README's commands can install it)."""

import os

import psutil
import pytest

from helpers import sysdeps
from tools import headless

CHROMIUM = sysdeps.find("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                    "(python tools/system_packages.py installs it as root with apt)")

PAGE = """<!doctype html><html><head><title>Test page</title></head><body>
<h1>Hello</h1><img id="local" src="dot.svg"><img id="remote" src="http://example.com/x.png">
<script>window.answer = 6 * 7;</script></body></html>"""
DOT = '<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="20"/></svg>'
WAIT_IMAGES = ("Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => "
               "{ i.onload = i.onerror = r; })))"
               ".then(() => [...document.images].map(i => [i.id, i.naturalWidth]))")


def test_the_command_is_headless_private_and_offline(tmp_path):
    command = headless.chromium_command("chromium", tmp_path / "p", 800, 600, offline=True)
    assert command[0] == "chromium" and "--headless" in command and "--remote-debugging-pipe" in command
    assert f"--user-data-dir={tmp_path / 'p'}" in command and "--window-size=800,600" in command
    assert "--host-resolver-rules=MAP * ~NOTFOUND" in command
    assert ("--no-sandbox" in command) == (os.geteuid() == 0)
    online = headless.chromium_command("c", tmp_path, 1, 1, offline=False)
    assert not any("resolver" in part for part in online)


@needs_chromium
def test_a_page_is_loaded_evaluated_and_photographed_offline_and_nothing_is_left(tmp_path):
    (tmp_path / "page.html").write_text(PAGE)
    (tmp_path / "dot.svg").write_text(DOT)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with headless.Chromium(CHROMIUM, width=640, height=480) as browser:
        folder = browser.folder
        assert folder.is_dir()
        page = browser.open((tmp_path / "page.html").as_uri())
        assert page.evaluate("document.title") == "Test page"
        assert page.evaluate("window.answer") == 42
        assert page.evaluate("Promise.resolve(7).then(x => x + 1)") == 8   # promises are awaited
        assert dict(page.evaluate(WAIT_IMAGES)) == {"local": 30, "remote": 0}   # offline: no host resolves
        assert (tmp_path / "page.html").as_uri() in page.requested_urls()
        assert "http://example.com/x.png" in page.requested_urls()
        shot = page.screenshot(tmp_path / "shot.png")
        assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 1000
        with pytest.raises(headless.BrowserError, match="no_such_name"):
            page.evaluate("no_such_name + 1")
        page.navigate((tmp_path / "page.html").as_uri() + "#again")
        assert page.evaluate("location.hash") == "#again"
    assert not folder.exists(), "the private profile and temp folder are removed"
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert left == set(), "no Chromium process outlives the with block"


def test_a_browser_that_cannot_start_leaves_nothing(tmp_path):
    fake = tmp_path / "fake-chromium"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    browser = headless.Chromium(str(fake), timeout_s=5)
    with pytest.raises(headless.BrowserError, match="exited"):
        browser.__enter__()
    assert not browser.folder.exists()
