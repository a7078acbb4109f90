"""A headless Chromium driven over the DevTools protocol on a pipe: no port, no websocket, stdlib only.

    with headless.Chromium(sysdeps.ensure("chromium")) as browser:
        page = browser.open("file:///.../index.html")
        page.evaluate("document.title")
        page.screenshot(Path("home.png"))

Chromium runs with ``--remote-debugging-pipe`` (commands on its fd 3, answers on fd 4, JSON
messages ended by a NUL byte), in a session of its own, with a private profile and temp folder
that are removed on exit, and with every host name mapped to "not found" (``offline=True``), so a
page that needs the network shows it. Leaving the ``with`` block closes the browser, and kills
its whole process group if it does not exit in time.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path


class BrowserError(RuntimeError):
    """Chromium failed to start, answered with an error, or did not answer in time."""


def chromium_command(binary: str, profile: Path, width: int, height: int, offline: bool) -> list[str]:
    """The command line: headless, DevTools on a pipe, a private profile, no background traffic."""
    command = [binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
               "--hide-scrollbars"]
    if os.geteuid() == 0:
        command.append("--no-sandbox")   # Chromium refuses to run as root with its sandbox
    if offline:
        command.append("--host-resolver-rules=MAP * ~NOTFOUND")
    return command + ["about:blank"]


def _high_fd(fd: int) -> int:
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Page:
    """One tab: a DevTools session attached to a target, with the events it received."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None, timeout_s: float | None = None) -> dict:
        """Send a DevTools command to this page and return its result."""
        return self.browser.send(method, params, session=self.session, timeout_s=timeout_s)

    def navigate(self, url: str, timeout_s: float | None = None) -> None:
        """Load ``url`` and wait for its ``load`` event."""
        self.browser.events.clear()
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"could not open {url}: {answer['errorText']}")
        if answer.get("loaderId"):   # none for a same-document navigation (a #fragment): no load event
            self.browser.wait_event("Page.loadEventFired", self.session, timeout_s)

    def evaluate(self, expression: str, timeout_s: float | None = None):
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout_s)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression[:80]!r} threw: {answer['exceptionDetails'].get('text')} "
                               f"{answer['exceptionDetails'].get('exception', {}).get('description', '')}")
        return answer["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page requested since the last :meth:`navigate` (documents, scripts, ...)."""
        return [event["params"]["request"]["url"] for event in self.browser.events
                if event.get("method") == "Network.requestWillBeSent"
                and event.get("sessionId") == self.session]

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page) to ``path``."""
        params: dict = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


class Chromium:
    """A headless Chromium process, used as a context manager (see the module text)."""

    def __init__(self, binary: str, width: int = 1280, height: int = 1000, offline: bool = True,
                 timeout_s: float = 30.0):
        self.binary, self.width, self.height, self.offline = binary, width, height, offline
        self.timeout_s = timeout_s
        self.events: list[dict] = []
        self._answers: queue.Queue = queue.Queue()
        self._next_id = 0
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None

    def __enter__(self) -> Chromium:
        self.folder = Path(tempfile.mkdtemp(prefix="course-chromium-"))
        to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())

        def wire_pipes():  # in the child, before exec: its fd 3 reads commands, fd 4 writes answers
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        env = {**os.environ, "TMPDIR": str(self.folder), "HOME": str(self.folder)}
        try:
            self.process = subprocess.Popen(
                chromium_command(self.binary, self.folder / "profile", self.width, self.height, self.offline),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=wire_pipes, pass_fds=(3, 4), start_new_session=True, env=env)
        except BaseException:
            for fd in (to_browser_r, to_browser_w, from_browser_r, from_browser_w):
                os.close(fd)
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._write = os.fdopen(to_browser_w, "wb", buffering=0)
        self._reader = threading.Thread(target=self._read, args=(os.fdopen(from_browser_r, "rb"),),
                                        daemon=True)
        self._reader.start()
        try:
            self.send("Browser.getVersion")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _read(self, stream) -> None:
        buffer = b""
        while chunk := stream.read1(65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for message in messages:
                self._answers.put(json.loads(message))
        self._answers.put(None)   # the browser closed its end
        stream.close()

    def _next(self, deadline: float) -> dict:
        try:
            message = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise BrowserError(f"Chromium did not answer within {self.timeout_s} s") from None
        if message is None:
            self._answers.put(None)
            raise BrowserError("Chromium exited")
        return message

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float | None = None) -> dict:
        """Send a DevTools command (to the browser, or to a page's ``session``); return its result."""
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            self._write.write(json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError("Chromium exited") from None
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            answer = self._next(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str, session: str | None = None, timeout_s: float | None = None) -> dict:
        """Wait for the next event ``method`` (of ``session``), keeping the others in :attr:`events`."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            event = self._next(deadline)
            self.events.append(event)
            if event.get("method") == method and (session is None or event.get("sessionId") == session):
                return event

    def open(self, url: str = "about:blank") -> Page:
        """A new tab with page, network and runtime events on, at ``url``."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Network", "Runtime"):
            page.send(f"{domain}.enable")
        if url != "about:blank":
            page.navigate(url)
        return page

    def __exit__(self, *exc) -> None:
        try:
            if self.process and self.process.poll() is None:
                try:
                    self._write.write(json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
                    self.process.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            if self.process:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)   # the renderers and helpers too
                except ProcessLookupError:
                    pass
                self.process.wait()
            try:
                self._write.close()
            except (AttributeError, OSError):
                pass
            if self.folder:
                shutil.rmtree(self.folder, ignore_errors=True)
