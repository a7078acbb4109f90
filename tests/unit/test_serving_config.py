"""The configuration files (TF Serving's protos and text format), the version policies and their
application by the model manager, warm-up records, certificates, and the REST path parser."""

import shutil

import numpy as np
import pytest

from helpers.serving import config, errors, models, rest, tls, warmup


def test_a_model_config_file_round_trips_through_tf_servings_text_format():
    text = config.model_config_text([
        {"name": "a", "base_path": "/m/a", "policy": [2, 3], "labels": {"stable": 2, "canary": 3}},
        {"name": "b", "base_path": "/m/b", "policy": "latest:2"},
        {"name": "c", "base_path": "/m/c", "policy": "all"}, {"name": "d", "base_path": "/m/d"}])
    parsed = config.parse_model_server_config(text).model_config_list.config
    assert [m.name for m in parsed] == ["a", "b", "c", "d"]
    assert dict(parsed[0].version_labels) == {"stable": 2, "canary": 3}
    on_disk = {1, 2, 4, 7}
    assert [config.aspired_versions(m.model_version_policy, on_disk) for m in parsed] == [
        {2}, {4, 7}, {1, 2, 4, 7}, {7}]
    assert config.aspired_versions(parsed[3].model_version_policy, set()) == set()
    single = config.single_model_config("m", "/x").model_config_list.config[0]
    assert (single.name, single.base_path, single.model_platform) == ("m", "/x", "tensorflow")
    with pytest.raises(ValueError, match="Error parsing text-format tensorflow.serving.ModelServerConfig"):
        config.parse_model_server_config("model_config_list { config { nme: 'a' } }")
    for text, message in (("model_config_list { config { name: 'a' } }", "base_path"),
                          ("model_config_list { config { name: 'a' base_path: '/x' "
                           "model_platform: 'onnx' } }",
                           "unsupported platform onnx"),
                          ("model_config_list { config { name: 'a' base_path: '/x' } "
                           "config { name: 'a' base_path: '/y' } }", "unique")):
        with pytest.raises(ValueError, match=message):
            config.parse_model_server_config(text)
    with pytest.raises(ValueError, match="Unknown policy"):
        config.model_config_text([{"name": "a", "base_path": "/x", "policy": "newest"}])


def test_ssl_and_monitoring_configs_are_read_from_their_text_format(tmp_path):
    paths = tls.make_certificates(tmp_path / "certs")
    assert paths["server_cert"].read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct(paths["client_key"].stat().st_mode & 0o777) == "0o600"
    (tmp_path / "ssl").write_text(tls.ssl_config_text(paths["server_key"], paths["server_cert"],
                                                      paths["ca"], True))
    ssl = config.read_ssl_config(tmp_path / "ssl")
    assert ssl.client_verify and ssl.server_key == paths["server_key"].read_text()
    assert ssl.custom_ca == paths["ca"].read_text()
    (tmp_path / "bad").write_text(tls.ssl_config_text(paths["server_key"], paths["server_cert"], None, True))
    with pytest.raises(ValueError, match="client_verify needs custom_ca"):
        config.read_ssl_config(tmp_path / "bad")
    (tmp_path / "monitoring").write_text('prometheus_config: {\n  enable: true,\n  path: "/m"\n}\n')
    prometheus = config.read_monitoring_config(tmp_path / "monitoring").prometheus_config
    assert prometheus.enable and prometheus.path == "/m"
    import grpc

    assert isinstance(tls.client_credentials(paths), grpc.ChannelCredentials)


def test_rest_paths_are_parsed_with_tf_servings_expressions():
    assert rest.parse_path("POST", "/v1/models/m/versions/3:predict") == {
        "name": "m", "version": 3, "label": None, "verb": "predict"}
    assert rest.parse_path("POST", "/V1/Models/m/labels/canary:PREDICT")["label"] == "canary"
    assert rest.parse_path("GET", "/v1/models/m/labels/x/metadata")["verb"] == "metadata"
    assert rest.parse_path("GET", "/v1/models") == {"name": "", "version": None, "label": None, "verb": ""}
    for method, path in (("GET", "/v1/models/m:predict"), ("POST", "/v1/models/m"), ("PUT", "/v1/models/m"),
                         ("POST", "/v1/models/m/versions/x:predict"), ("GET", "/v1/models/m/extra")):
        assert rest.parse_path(method, path) is None, (method, path)
    with pytest.raises(errors.InvalidArgument, match="Failed to convert version"):
        rest.parse_path("POST", f"/v1/models/m/versions/{2**63}:predict")


class FakeVersion:
    def __init__(self, version):
        self.version = version


@pytest.fixture
def fake_loading(monkeypatch):
    """Versions 'load' instantly; a folder holding a file named BROKEN fails to load."""
    def load(path, version, name=""):
        if (path / "BROKEN").exists():
            raise RuntimeError("cannot load")
        return FakeVersion(version)

    monkeypatch.setattr(models, "load_version", load)


def make_versions(base, *numbers):
    for number in numbers:
        (base / str(number)).mkdir(parents=True, exist_ok=True)
        (base / str(number) / "saved_model.pb").write_bytes(b"")


def manager_for(base, policy="latest", labels=None, allow=False):
    manager = models.ModelManager(warmup_iterations=0, allow_labels_for_unavailable=allow)
    manager.apply_config(config.parse_model_server_config(config.model_config_text(
        [{"name": "m", "base_path": base, "policy": policy, "labels": labels or {}}])))
    return manager


def states(manager):
    return {int(row["version"]): row["state"] for row in manager.status("m")}


def test_the_manager_loads_what_the_policy_aspires_before_it_unloads(tmp_path, fake_loading):
    make_versions(tmp_path, 1, 2)
    manager = manager_for(tmp_path)
    assert manager.versions("m") == [2] and states(manager) == {2: "AVAILABLE"}
    make_versions(tmp_path, 3)
    assert manager.refresh()["m"] == {"loaded": [3], "unloaded": [2]}
    assert states(manager) == {3: "AVAILABLE", 2: "END"} and manager.get("m").version == 3
    shutil.rmtree(tmp_path / "3")                                   # roll back
    manager.refresh()
    assert manager.get("m").version == 2 and states(manager) == {3: "END", 2: "AVAILABLE"}
    make_versions(tmp_path, 4)
    (tmp_path / "4" / "BROKEN").write_text("")
    manager.refresh()                                               # 4 fails: 2 keeps serving
    assert manager.get("m").version == 2 and states(manager)[4] == "END"
    assert manager.status("m", 4)[0]["status"]["error_message"] == "RuntimeError: cannot load"
    with pytest.raises(errors.NotFound, match="Could not find version 9 of model m"):
        manager.status("m", 9)
    with pytest.raises(errors.NotFound, match="Servable not found for request: Specific\\(m, 3\\)"):
        manager.get("m", 3)


def test_labels_need_available_versions_unless_allowed_and_a_moved_label_always_does(
        tmp_path, fake_loading):
    make_versions(tmp_path, 1, 2)
    with pytest.raises(errors.FailedPrecondition, match="label to version 2 of model m, which is not"):
        manager_for(tmp_path, [1, 2], {"canary": 2})             # at start-up nothing is available yet
    manager = manager_for(tmp_path, [1, 2], {"canary": 2}, allow=True)
    assert manager.get("m", label="canary").version == 2
    with pytest.raises(errors.InvalidArgument, match="Unrecognized servable version label: stable"):
        manager.get("m", label="stable")
    moved = config.parse_model_server_config(config.model_config_text(
        [{"name": "m", "base_path": tmp_path, "policy": [1, 2, 3], "labels": {"canary": 3}}]))
    make_versions(tmp_path, 3)
    with pytest.raises(errors.FailedPrecondition, match="version 3"):
        manager.apply_config(moved)
    assert manager.versions("m") == [1, 2]                          # nothing of it was applied
    manager.apply_config(config.parse_model_server_config(config.model_config_text(
        [{"name": "other", "base_path": tmp_path, "policy": "all"}])))
    with pytest.raises(errors.NotFound, match="Latest\\(m\\)"):
        manager.get("m")                                            # a model left out is unloaded
    assert set(states(manager).values()) == {"END"} and manager.names == ["other"]
    assert manager.versions("other") == [1, 2, 3]


def test_warmup_records_are_written_read_and_replayed(tmp_path):
    calls = []

    class Recorder:
        inputs = {"image": models.TensorSpec("image", np.dtype("float32"), (None, 2))}

        def run(self, inputs):
            calls.append(inputs["image"].shape)

    version = models.ModelVersion("m", 1, tmp_path, {"serving_default": Recorder()}, {})
    assert warmup.run(version) == 0                                 # no file: nothing to replay
    records = [warmup.predict_log({"image": np.zeros((n, 2), np.float32)}) for n in (1, 4)]
    written = warmup.write_requests(tmp_path, records)
    assert written == tmp_path / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.run(version, iterations=2) == 2 and calls == [(1, 2), (1, 2), (4, 2), (4, 2)]
    warmup.requests_path(tmp_path).write_bytes(b"not a TFRecord at all")
    with pytest.raises(ValueError, match="Please verify your warmup data is in TFRecord format"):
        warmup.run(version)
    with pytest.raises(ValueError, match="at most 1000"):
        warmup.write_requests(tmp_path, records * 501)


def test_load_curves_keep_a_colour_per_server_and_a_style_per_percentile():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.serving import charts

    results = {"batching off": {"rps": [100, 150], "p50_ms": [2, 9], "p99_ms": [5, 20]},
               "batching on": {"rps": [110, 220], "p50_ms": [2, 6], "p99_ms": [4, 12]}}
    fig = charts.load_curves(results, [1, 8], "Load")
    throughput, latency = fig.axes
    colours = {line.get_label(): line.get_color() for axis in fig.axes for line in axis.get_lines()}
    assert colours["batching off"] == colours["batching off, p50"] == colours["batching off, p99"]
    assert colours["batching on"] == colours["batching on, p99"] != colours["batching off"]
    styles = {line.get_label(): line.get_linestyle() for line in latency.get_lines()}
    assert styles["batching off, p50"] == styles["batching on, p50"] != styles["batching on, p99"]
    assert list(latency.get_lines()[1].get_ydata()) == [5, 20]
    with pytest.raises(ValueError, match="At most"):
        charts.server_colours([str(i) for i in range(7)])
    matplotlib.pyplot.close(fig)


def test_timeline_panels_draw_series_thresholds_events_and_spans():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from helpers.serving import charts

    index = pd.Index([0.0, 1.0, 2.0, 3.0], name="seconds")
    latency = pd.DataFrame({"p50": [0.01, 0.01, 0.5, 0.01], "p99": [0.02, 0.03, 0.9, 0.02]}, index=index)
    traffic = pd.DataFrame({"1": [10, 10, 0, 10], "2": [0, 0, 5, 0]}, index=index)
    figure = charts.timeline_panels(
        [{"title": "Latency", "frame": latency, "ylabel": "s", "threshold": 0.25, "logy": True},
         {"title": "Traffic", "frame": traffic, "ylabel": "req/s", "ymin": 0},
         {"title": "Shares", "frame": traffic / 10, "stacked": True}],
        events={"release": 1.5, "rollback": 2.5}, spans=[(2.0, 3.0, "firing")], title="Run")
    first, second, third, hidden = figure.axes
    assert [line.get_label() for line in first.lines][:3] == ["p50", "p99", "threshold 0.25"]
    assert list(first.lines[1].get_ydata()) == [0.02, 0.03, 0.9, 0.02]
    assert first.get_yscale() == "log" and second.get_yscale() == "linear"
    assert second.get_ylim()[0] == 0
    assert [line.get_xdata()[0] for line in second.lines[2:]] == [1.5, 2.5]     # the event lines
    assert any(patch.get_label() == "firing" for patch in first.patches)
    assert len(third.collections) >= 2 and not hidden.get_visible()
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["release (1.5 s)", "rollback (2.5 s)"]
    assert first.get_title() == "Latency" and figure.get_suptitle() == "Run"
    assert second.get_xlabel() == "seconds since the load started"       # its column's lowest panel
