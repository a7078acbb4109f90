"""helpers.prometheus and helpers.sysdeps: a real Prometheus and promtool (Debian's package)."""

import http.server
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from helpers import env, prometheus, sysdeps

ROOT = env.course_root()
RULES = ROOT / "monitoring" / "rules.yml"
INSTALLABLE = os.geteuid() == 0 and shutil.which("apt-get") is not None


def test_prometheus_is_there_wherever_the_readme_can_install_it():
    """CI (root, apt) must run the real Prometheus: a notebook may not quietly do without it."""
    if not INSTALLABLE and sysdeps.find("prometheus") is None:
        pytest.skip("not root with apt, and Prometheus not installed: the notebook says how to get it")
    for program in ("prometheus", "promtool"):
        path = sysdeps.ensure(program)
        assert "version 2." in sysdeps.version(path) or "version 3." in sysdeps.version(path)


needs_prometheus = pytest.mark.skipif(sysdeps.find("prometheus") is None and not INSTALLABLE,
                                      reason="Prometheus not installed and not installable here")


def test_find_looks_on_path_then_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert sysdeps.find("promtool", root=tmp_path) is None
    binary = sysdeps.cache_dir(tmp_path) / "prometheus" / "usr" / "bin" / "promtool"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho 'promtool, version 9.9'\n")
    assert sysdeps.find("promtool", root=tmp_path) is None          # not executable
    binary.chmod(0o755)
    assert sysdeps.find("promtool", root=tmp_path) == str(binary)
    assert sysdeps.version(str(binary)) == "promtool, version 9.9"


def test_ensure_names_the_program_and_where_to_get_it_when_it_cannot_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))           # no apt-get, no dpkg either
    with pytest.raises(sysdeps.MissingProgram, match=r"prometheus is not installed.*prometheus\.io/download"):
        sysdeps.ensure("prometheus", root=tmp_path)


def test_config_text_scrapes_each_target_at_the_servers_metrics_path():
    config = yaml.safe_load(prometheus.config_text({"model-server": "http://127.0.0.1:8501"}, ["r.yml"],
                                                   scrape_interval_s=0.5))
    assert config["global"]["scrape_interval"] == "500ms" and config["rule_files"] == ["r.yml"]
    job = config["scrape_configs"][0]
    assert (job["job_name"], job["metrics_path"], job["static_configs"]) == (
        "model-server", "/monitoring/prometheus/metrics", [{"targets": ["127.0.0.1:8501"]}])
    with pytest.raises(ValueError, match="not an http"):
        prometheus.config_text({"bad": "127.0.0.1:8501"})


def test_duration_uses_prometheus_syntax():
    assert [prometheus.duration(s) for s in (1, 0.5, 15, 1.25)] == ["1s", "500ms", "15s", "1250ms"]
    with pytest.raises(ValueError):
        prometheus.duration(0)


def test_lab_rules_compress_durations_and_keep_thresholds_and_names():
    production = yaml.safe_load(RULES.read_text())
    lab = yaml.safe_load(prometheus.lab_rules(RULES.read_text(), window="10s", hold="5s"))
    for group, lab_group in zip(production["groups"], lab["groups"]):
        assert lab_group["interval"] == "1s"
        for rule, lab_rule in zip(group["rules"], lab_group["rules"]):
            assert lab_rule.get("alert", lab_rule.get("record")) == rule.get("alert", rule.get("record"))
            assert "[5m]" not in lab_rule["expr"]
            assert lab_rule["expr"].replace("[10s]", "[5m]") == rule["expr"]
            assert ("[5m]" in rule["expr"]) == ("[10s]" in lab_rule["expr"])
            assert lab_rule.get("for") == ("5s" if "for" in rule else None)


@needs_prometheus
def test_promtool_checks_and_unit_tests_the_course_rules(tmp_path):
    ok, output = prometheus.promtool("check", "rules", RULES)
    assert ok and "SUCCESS: 8 rules found" in output, output
    ok, output = prometheus.promtool("test", "rules", RULES.parent / "rules_test.yml")
    assert ok and "SUCCESS" in output, output
    lab = tmp_path / "lab.yml"
    lab.write_text(prometheus.lab_rules(RULES.read_text()))
    assert prometheus.promtool("check", "rules", lab)[0]
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("sum by (model, le)", "sum by (model, le", 1))
    ok, output = prometheus.promtool("check", "rules", broken)
    assert not ok and 'rule 3, "model:latency_seconds:p99": could not parse expression' in output, output


class _Exposition(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self):
        type(self).calls += 1
        body = f"# TYPE demo_requests_total counter\ndemo_requests_total {type(self).calls * 10}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def exposition():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exposition)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@needs_prometheus
def test_a_real_prometheus_scrapes_queries_fires_an_alert_and_leaves_nothing(tmp_path, exposition):
    rules = tmp_path / "rules.yml"
    rules.write_text(textwrap.dedent("""\
        groups:
          - name: demo
            interval: 1s
            rules:
              - alert: DemoTraffic
                expr: rate(demo_requests_total[5s]) > 1
                for: 2s
              - alert: NeverFires
                expr: rate(demo_requests_total[5s]) > 1e9
        """))
    started = time.time()
    with prometheus.Prometheus({"demo": exposition}, [rules], scrape_interval_s=0.5) as prom:
        directory, process = prom.directory, prom.process
        assert prom.url.startswith("http://127.0.0.1:")
        prom.wait_for_data("demo_requests_total", timeout_s=60)
        assert prom.targets_up() == {"demo": True}
        assert prom.rule_names() == ["DemoTraffic", "NeverFires"]
        prom.wait_for(lambda p: p.alert_state("DemoTraffic") == "firing", 60, "DemoTraffic to fire")
        assert prom.alert_state("NeverFires") == "inactive"
        rate = prom.value("rate(demo_requests_total[5s])")
        assert 5 < rate < 40, rate                          # +10 per scrape, 2 scrapes a second
        frame = prom.query_range("demo_requests_total", started, time.time(), step_s=1)
        instance = exposition.removeprefix("http://")
        assert list(frame.columns) == [f"__name__=demo_requests_total,instance={instance},job=demo"]
        assert frame.iloc[:, 0].is_monotonic_increasing and len(frame) >= 2
        with pytest.raises(ValueError, match="parse error"):
            prom.query("sum(rate(demo_requests_total[5s])")
    assert process.poll() is not None and not directory.exists() and prom.directory is None


@needs_prometheus
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_prometheus_stops_when_the_process_that_started_it_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from helpers import prometheus
        prom = prometheus.Prometheus({{}}).start()
        print(prom.process.pid, prom.directory, flush=True)
        time.sleep(120)
        """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pid, directory = parent.stdout.readline().split()
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists(), "Prometheus outlived its parent"
    finally:
        parent.kill()
        shutil.rmtree(directory, ignore_errors=True)   # the killed parent could not remove it


def test_nodeps_requirements_are_read_and_checked_against_what_is_installed(tmp_path):
    (tmp_path / sysdeps.NODEPS_REQUIREMENTS).write_text(
        "# a model wheel\npytest==0.0.1   # wrong version\nno-such-package-xyz==1.0\n")
    assert sysdeps.nodeps_requirements(tmp_path) == ["pytest==0.0.1", "no-such-package-xyz==1.0"]
    assert sysdeps.missing_nodeps(tmp_path) == ["pytest==0.0.1", "no-such-package-xyz==1.0"]
    (tmp_path / sysdeps.NODEPS_REQUIREMENTS).write_text(f"pytest=={pytest.__version__}\n")
    assert sysdeps.missing_nodeps(tmp_path) == [] and sysdeps.install_nodeps(tmp_path) == []
    assert sysdeps.nodeps_requirements(tmp_path / "none") == []


@needs_prometheus
def test_a_prometheus_that_cannot_start_says_why_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(\n")
    prom = prometheus.Prometheus({}, [broken], start_timeout_s=30)
    with pytest.raises(RuntimeError, match=r"(?s)Prometheus exited with 1:.*could not parse expression"):
        prom.start()
    assert prom.directory is None and prom.process.poll() is not None
