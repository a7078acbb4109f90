"""A real Prometheus on 127.0.0.1 for a notebook or a test: start, query, always stop.

    with prometheus.Prometheus({"model-server": server.rest_url}, rule_files=[rules]) as prom:
        prom.wait_for_data("serving_requests_total")
        prom.query('sum(rate(serving_requests_total[10s]))')
        prom.query_range('histogram_quantile(0.99, ...)', start, end, step_s=1)

The binary is Debian's (``helpers.sysdeps`` fetches it). Each instance gets a private 0700
temporary folder (configuration, rules, its database), a free port on 127.0.0.1 and its own
log; :meth:`Prometheus.stop` (the context manager, ``atexit``) terminates it and removes the
folder, and on Linux the process also gets SIGTERM from the kernel if the process that started
it dies (``PR_SET_PDEATHSIG``), so a killed Jupyter kernel leaves no Prometheus behind.

:func:`lab_rules` compresses the durations of a production rules file (``[5m]`` windows,
``for: 5m``) to seconds, so that an alert can fire and resolve within a notebook; :func:`promtool`
runs ``promtool`` (``check rules``, ``test rules``, ``check config``).
"""

from __future__ import annotations

import atexit
import ctypes
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import requests
import yaml

from helpers import sysdeps
from helpers.serving.launcher import free_port, wait_for

METRICS_PATH = "/monitoring/prometheus/metrics"


def config_text(targets: dict[str, str], rule_files=(), scrape_interval_s: float = 1.0,
                evaluation_interval_s: float = 1.0, metrics_path: str = METRICS_PATH) -> str:
    """``prometheus.yml`` scraping each ``job -> base URL`` (``http://127.0.0.1:8501``) at
    ``metrics_path`` every ``scrape_interval_s``, evaluating ``rule_files`` every
    ``evaluation_interval_s``."""
    scrape_configs = []
    for job, url in targets.items():
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"target {job!r}: {url!r} is not an http(s)://host:port URL")
        scrape_configs.append({"job_name": job, "metrics_path": metrics_path, "scheme": parsed.scheme,
                               "static_configs": [{"targets": [parsed.netloc]}]})
    config = {"global": {"scrape_interval": duration(scrape_interval_s),
                         "scrape_timeout": duration(scrape_interval_s),
                         "evaluation_interval": duration(evaluation_interval_s)},
              "rule_files": [str(path) for path in rule_files],
              "scrape_configs": scrape_configs}
    return yaml.safe_dump(config, sort_keys=False)


def duration(seconds: float) -> str:
    """Prometheus's duration syntax (integers with a unit): 1 -> ``1s``, 0.5 -> ``500ms``."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        raise ValueError(f"a duration must be positive, not {seconds}")
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


_WINDOW = re.compile(r"\[(\d+[smhd])\]")


def lab_rules(text: str, window: str = "10s", hold: str = "5s", interval: str = "1s") -> str:
    """A rules file's text with every range window ``[...]`` set to ``window``, every ``for:`` to
    ``hold`` and every group's evaluation ``interval`` to ``interval``: the same rules, compressed
    in time for a demonstration. Everything else (names, expressions, thresholds, labels) stays."""
    rules = yaml.safe_load(text)
    for group in rules["groups"]:
        group["interval"] = interval
        for rule in group["rules"]:
            rule["expr"] = _WINDOW.sub(f"[{window}]", str(rule["expr"]))
            if "for" in rule:
                rule["for"] = hold
    return yaml.safe_dump(rules, sort_keys=False, width=100)


def promtool(*arguments: str, timeout_s: float = 60) -> tuple[bool, str]:
    """Run ``promtool <arguments>``: (exit status was 0, stdout + stderr)."""
    run = subprocess.run([sysdeps.ensure("promtool"), *map(str, arguments)], capture_output=True,
                         text=True, timeout=timeout_s)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):       # not Linux
        return None


# Resolved here, in the parent: between fork and exec (preexec_fn) only the call itself runs, no
# dynamic loading, which could deadlock on the loader's lock in a process with many threads.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:            # runs in the child between fork and exec (Linux)
    _PRCTL(1, signal.SIGTERM)              # PR_SET_PDEATHSIG = 1


class Prometheus:
    """Prometheus scraping ``targets`` (``job -> base URL``) with ``rule_files`` loaded.

    ``url`` is its HTTP API's base. :meth:`start` waits until ``/-/ready`` answers (or raises
    with the log, having stopped the process).
    """

    def __init__(self, targets: dict[str, str], rule_files=(), scrape_interval_s: float = 1.0,
                 evaluation_interval_s: float = 1.0, start_timeout_s: float = 60,
                 binary: str | None = None):
        self.targets, self.rule_files = dict(targets), [Path(path) for path in rule_files]
        self.scrape_interval_s, self.evaluation_interval_s = scrape_interval_s, evaluation_interval_s
        self.start_timeout_s = start_timeout_s
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.directory: Path | None = None
        self._log_text = ""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def version(self) -> str:
        """``prometheus --version``'s first line."""
        return sysdeps.version(self.binary or sysdeps.ensure("prometheus"))

    def start(self) -> Prometheus:
        """Write the configuration, start the process on 127.0.0.1, wait until it is ready."""
        if self.process and self.process.poll() is None:
            raise RuntimeError(f"Prometheus already running (pid {self.process.pid})")
        binary = self.binary or sysdeps.ensure("prometheus")
        self.directory = Path(tempfile.mkdtemp(prefix="prometheus-"))
        try:
            rules = []
            for number, path in enumerate(self.rule_files):
                copy = self.directory / f"rules-{number}-{path.name}"
                shutil.copyfile(path, copy)
                rules.append(copy.name)
            (self.directory / "prometheus.yml").write_text(
                config_text(self.targets, rules, self.scrape_interval_s, self.evaluation_interval_s))
            command = [binary, "--config.file=prometheus.yml", "--storage.tsdb.path=data",
                       f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d",
                       "--log.level=warn"]
            with open(self.directory / "prometheus.log", "wb") as log:
                self.process = subprocess.Popen(
                    command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent if _PRCTL and sys.platform.startswith("linux") else None)
            atexit.register(self.stop)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prometheus exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_for(ready, self.start_timeout_s, "Prometheus to be ready")
        except TimeoutError as late:
            raise TimeoutError(f"{late}:\n{self.log_text()}") from None

    def log_text(self) -> str:
        """What Prometheus logged (kept after :meth:`stop`)."""
        if self.directory is not None and (self.directory / "prometheus.log").exists():
            return (self.directory / "prometheus.log").read_text(errors="replace")[-3000:]
        return self._log_text

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; remove the temporary folder; return the exit code."""
        code = None
        try:
            if self.process and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            if self.process:
                code = self.process.returncode
        finally:
            atexit.unregister(self.stop)
            if self.directory is not None:
                self._log_text = self.log_text()
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None
        return code

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/) ---

    def _get(self, path: str, **params) -> dict:
        reply = requests.get(f"{self.url}{path}", params=params, timeout=30)
        body = reply.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus refused {params or path}: {body.get('error', reply.text)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[tuple[dict, float]]:
        """An instant query: ``[(labels, value), ...]`` (a scalar result gives one row, no labels)."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        data = self._get("/api/v1/query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(row["metric"], float(row["value"][1])) for row in data["result"]]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value of an instant query, ``None`` if it returned no series."""
        rows = self.query(expr, at)
        if len(rows) > 1:
            raise ValueError(f"{expr!r} returned {len(rows)} series, not one")
        return rows[0][1] if rows else None

    def query_range(self, expr: str, start: float, end: float, step_s: float = 1.0,
                    label: str | None = None) -> pd.DataFrame:
        """A range query as a frame indexed by time (seconds since ``start``), one column per
        series, named by the value of ``label`` (or by all labels)."""
        data = self._get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                         step=f"{step_s:g}")
        columns = {}
        for row in data["result"]:
            labels = row["metric"]
            name = labels.get(label, "") if label else ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            columns[name or expr] = pd.Series({float(t) - start: float(v) for t, v in row["values"]})
        frame = pd.DataFrame(columns).sort_index()
        frame.index.name = "seconds"
        return frame

    def alerts(self) -> list[dict]:
        """The active alerts (``/api/v1/alerts``): name, state (pending or firing), labels, value."""
        return [{"name": a["labels"].get("alertname"), "state": a["state"], "labels": a["labels"],
                 "value": float(a["value"]) if a.get("value") else None, "active_at": a.get("activeAt")}
                for a in self._get("/api/v1/alerts")["alerts"]]

    def alert_state(self, name: str) -> str:
        """``"firing"``, ``"pending"`` or ``"inactive"`` for the alert ``name``."""
        states = {alert["state"] for alert in self.alerts() if alert["name"] == name}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"

    def rule_names(self) -> list[str]:
        """The names of the loaded recording and alerting rules (``/api/v1/rules``)."""
        return [rule["name"] for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def targets_up(self) -> dict[str, bool]:
        """``job -> last scrape succeeded`` from ``/api/v1/targets``."""
        targets = self._get("/api/v1/targets")["activeTargets"]
        return {target["labels"]["job"]: target["health"] == "up" for target in targets}

    def wait_for(self, condition, timeout_s: float = 60, what: str = "the condition",
                 poll_s: float = 0.25) -> float:
        """Poll ``condition(self)`` until true; return the seconds it took (TimeoutError names
        ``what`` and the log)."""
        started = time.monotonic()
        while not condition(self):
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"Prometheus is not running:\n{self.log_text()}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"Waited {timeout_s:g} s for {what}")
            time.sleep(poll_s)
        return time.monotonic() - started

    def wait_for_data(self, expr: str, timeout_s: float = 60) -> float:
        """Wait until the instant query ``expr`` returns a series (the first scrape lands a few
        seconds after start: wait for data, not for a fixed time)."""
        return self.wait_for(lambda prom: bool(prom.query(expr)), timeout_s, f"data for {expr!r}")
