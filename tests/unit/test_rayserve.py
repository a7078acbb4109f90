"""helpers.rayserve without starting Ray (the notebook run covers the integration): cleanup on a
failed start, the deployment factory's checks, the deployment's request handling and batching
(its class called directly, Serve's batch queue in a plain event loop), replica counts from
serve.status(), the poller, timing from its samples, and finding and killing a replica actor."""

import asyncio
import json
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import ray
from ray import serve

from helpers import rayserve


def test_running_cleans_up_when_ray_fails_to_start(monkeypatch):
    made, calls = [], []
    real_mkdtemp = rayserve.tempfile.mkdtemp

    def mkdtemp(**kwargs):
        made.append(real_mkdtemp(**kwargs))
        return made[-1]

    def failing_init(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("no Ray today")

    monkeypatch.setattr(rayserve.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(ray, "init", failing_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(serve, "shutdown", lambda: calls.append("serve.shutdown"))
    with pytest.raises(RuntimeError, match="no Ray today"):
        with rayserve.running():
            pass
    init = calls[0]
    assert init["_node_ip_address"] == "127.0.0.1" and init["include_dashboard"] is False
    assert init["_temp_dir"] == made[0] and len(made[0]) < 40        # Ray's socket paths are short
    assert "serve.shutdown" not in calls          # it would start a Ray of its own
    assert not rayserve.os.path.exists(made[0])
    assert rayserve._TEMP_DIR == {}               # the controller-log lookup points nowhere now
    assert rayserve.os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_running_starts_the_proxy_on_loopback_and_yields_its_url(monkeypatch):
    seen = {}
    monkeypatch.setattr(ray, "init", lambda **kwargs: None)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", lambda: seen.setdefault("ray down", True))
    monkeypatch.setattr(serve, "start", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(serve, "shutdown", lambda: seen.setdefault("serve down", True))
    with rayserve.running(http_port=8123) as url:
        assert url == "http://127.0.0.1:8123"
    assert seen["http_options"] == {"host": "127.0.0.1", "port": 8123}
    assert seen["ray down"] and seen["serve down"]


@pytest.mark.parametrize("config", [{"min_replicas": 1}, {"min_replicas": -1, "max_replicas": 2}])
def test_classifier_app_rejects_an_incomplete_autoscaling_config(config):
    with pytest.raises(ValueError, match="max_replicas"):
        rayserve.classifier_app("model.keras", config)


def test_classifier_app_binds_the_model_with_batching_and_autoscaling():
    config = {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 2}
    app = rayserve.classifier_app("m.keras", config,
                                  max_batch_size=8, version="7", num_cpus=0.5)
    deployment = app._bound_deployment
    assert deployment.name == "Classifier"
    assert deployment._deployment_config.autoscaling_config.max_replicas == 3
    assert deployment._deployment_config.user_config == {"version": "7"}
    assert deployment.ray_actor_options["num_cpus"] == 0.5
    assert app._bound_deployment.init_args == ("m.keras", 1)
    assert deployment._deployment_config.max_surge_percent == 100     # new replicas before old stop


def test_scaling_decisions_parse_the_controller_log():
    lines = ["INFO deployment_state.py:3952 -- Upscaling Deployment(name='Classifier', app='fashion') "
             "from 1 to 2 replicas. Current ongoing requests: 7.25, current running replicas: 1.\n",
             "INFO something else\n",
             "INFO Downscaling Deployment(name='C', app='f') from 2 to 1 replicas. Current ongoing "
             "requests: 0.00, current running replicas: 2.\n"]
    table = rayserve.scaling_decisions(lines + lines[:1])      # the same line twice: one decision
    assert table.to_dict("records") == [
        {"direction": "up", "from": 1, "to": 2, "ongoing": 7.25, "running": 1},
        {"direction": "down", "from": 2, "to": 1, "ongoing": 0.0, "running": 2}]
    assert rayserve.scaling_decisions([]).empty
    assert rayserve.ceil_div(7.25, 2) == 4 and rayserve.ceil_div(4, 2) == 2
    with pytest.raises(ValueError):
        rayserve.ceil_div(1, 0)


def test_non_loopback_listeners_sees_a_child_on_all_interfaces_and_not_on_loopback():
    import subprocess
    import sys

    code = ("import socket,sys,time\nfor host in ('0.0.0.0', '127.0.0.1'):\n s=socket.socket();"
            "s.bind((host,0));s.listen();globals()[host]=s\nprint('ready',flush=True);time.sleep(30)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        found = rayserve.non_loopback_listeners()
        assert [ip for _, ip, _ in found] == ["0.0.0.0"]
    finally:
        child.kill()
        child.wait()


def _status(states):
    deployment = SimpleNamespace(replica_states=states)
    return SimpleNamespace(applications={"app": SimpleNamespace(deployments={"Dep": deployment})})


def test_replica_states_reads_serve_status(monkeypatch):
    from ray.serve._private.common import ReplicaState

    monkeypatch.setattr(serve, "status", lambda: _status({ReplicaState.RUNNING: 2, "STARTING": 1}))
    assert rayserve.replica_states("app", "Dep") == {"RUNNING": 2, "STARTING": 1}
    assert rayserve.replica_states("other", "Dep") == {}
    assert rayserve.replica_states("app", "Other") == {}


def test_the_poller_records_counts_over_time(monkeypatch):
    counts = iter([{"RUNNING": 1}, {"RUNNING": 1, "STARTING": 1}] + [{"RUNNING": 2}] * 1000)
    monkeypatch.setattr(rayserve, "replica_states", lambda app, dep: next(counts))
    with rayserve.ReplicaPoller("app", "Dep", interval_s=0.01) as poller:
        time.sleep(0.2)
    frame = poller.frame()
    assert len(frame) >= 5 and frame["time"].is_monotonic_increasing
    assert frame["running"].tolist()[:3] == [1, 1, 2] and frame["starting"].tolist()[:3] == [0, 1, 0]
    rows = len(frame)
    time.sleep(0.05)
    assert len(poller.frame()) == rows                       # stopped on exit


def test_first_time_measures_from_the_given_moment():
    frame = pd.DataFrame({"time": [10.0, 11.0, 12.0, 13.0, 14.0], "running": [2, 1, 1, 2, 1]})
    assert rayserve.first_time(frame, "running", lambda n: n >= 2, after=10.5) == pytest.approx(2.5)
    assert rayserve.first_time(frame, "running", lambda n: n <= 1, after=13.0) == pytest.approx(1.0)
    assert rayserve.first_time(frame, "running", lambda n: n >= 3, after=0) is None


def test_replica_names_are_filtered_and_one_is_killed(monkeypatch):
    actors = [{"name": "SERVE_REPLICA::app#Dep#b", "namespace": "serve"},
              {"name": "SERVE_REPLICA::app#Dep#a", "namespace": "serve"},
              {"name": "SERVE_REPLICA::app#Other#c", "namespace": "serve"},
              {"name": "SERVE_CONTROLLER_ACTOR", "namespace": "serve"},
              {"name": "SERVE_REPLICA::app#Dep#z", "namespace": "elsewhere"}]
    killed = []
    monkeypatch.setattr(ray.util, "list_named_actors", lambda all_namespaces: actors)
    monkeypatch.setattr(ray, "get_actor", lambda name, namespace: (name, namespace))
    monkeypatch.setattr(ray, "kill", lambda handle, no_restart: killed.append((handle, no_restart)))
    names = ["SERVE_REPLICA::app#Dep#a", "SERVE_REPLICA::app#Dep#b"]
    assert rayserve.replica_actor_names("app", "Dep") == names
    assert rayserve.kill_one_replica("app", "Dep") == "SERVE_REPLICA::app#Dep#a"
    assert killed == [(("SERVE_REPLICA::app#Dep#a", "serve"), True)]
    with pytest.raises(RuntimeError, match="no live replica"):
        rayserve.kill_one_replica("app", "Missing")


def test_network_interfaces_reads_the_namespace_table(tmp_path):
    table = tmp_path / "dev"
    table.write_text("Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
                     "    lo: 1 2 3 4\n  eth0: 5 6 7 8\n")
    assert rayserve.network_interfaces(str(table)) == ["eth0", "lo"]
    assert rayserve.network_interfaces(str(tmp_path / "missing")) == []
    assert "lo" in rayserve.network_interfaces() or not rayserve.os.path.exists("/proc/self/net/dev")


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("ray_model") / "m.keras"
    model.save(path)
    return path, model


def test_parse_instances_returns_one_float32_image():
    image = np.linspace(0, 1, 28 * 28).reshape(28, 28, 1)
    parsed = rayserve.parse_instances({"instances": [image.tolist()]})
    assert parsed.shape == (1, 28, 28, 1) and parsed.dtype == np.float32
    np.testing.assert_allclose(parsed[0], image, rtol=1e-6)
    assert rayserve.parse_instances({"instances": [[[1, 2]]]}, shape=(1, 2)).shape == (1, 1, 2)


@pytest.mark.parametrize("payload, detail", [
    ([1, 2], None), ({}, None), ({"instances": []}, None), ({"images": [[0]]}, None),
    ({"instances": np.zeros((2, 28, 28, 1)).tolist()}, "got 2 instead"),
    ({"instances": "pixels"}, "got str instead"),
    ({"instances": [np.zeros((28, 28)).tolist()]}, "got shape 28x28"),
    ({"instances": [0.5]}, "got shape scalar"),
    ({"instances": [[["a"] * 28] * 28]}, "not a numeric array"),
    ({"instances": [[[0.0], [1.0, 2.0]]]}, "not a numeric array"),           # ragged
    ({"instances": [np.full((28, 28, 1), np.nan).tolist()]}, "NaN"),
    ({"instances": [np.full((28, 28, 1), np.inf).tolist()]}, "NaN or infinite"),
])
def test_parse_instances_refuses_bad_requests_with_a_clear_message(payload, detail):
    with pytest.raises(rayserve.BadRequest) as refused:
        rayserve.parse_instances(payload)
    message = str(refused.value)
    assert message.startswith('send {"instances": [one 28x28x1 image]}')
    assert detail in message if detail else message == 'send {"instances": [one 28x28x1 image]}'


def test_predict_batch_gives_each_request_its_own_prediction():
    calls = []

    def model(batch, training):
        calls.append((batch.shape, training))
        return batch.reshape(len(batch), -1)[:, :3] * 2

    images = [np.full((1, 2, 2), i, dtype="float32") for i in range(3)]
    assert rayserve.predict_batch(model, images) == [[[0.0] * 3], [[2.0] * 3], [[4.0] * 3]]
    assert calls == [((3, 2, 2), False)]             # one forward pass for the batch


class _Request:
    def __init__(self, body: bytes):
        self.body = body

    async def json(self):
        return json.loads(self.body)


def _post(payload) -> _Request:
    return _Request(payload if isinstance(payload, bytes) else json.dumps(payload).encode())


@pytest.fixture()
def replica(tiny_model_file, monkeypatch):
    """The deployment's own class (``func_or_class``), instantiated outside Ray; Serve's batch
    queue asks the replica context only for max_ongoing_requests (a warning)."""
    monkeypatch.setattr(serve, "get_replica_context", lambda: SimpleNamespace(
        _deployment_config=SimpleNamespace(max_ongoing_requests=32)))
    path, _ = tiny_model_file
    app = rayserve.classifier_app(str(path), {"min_replicas": 1, "max_replicas": 2}, max_batch_size=8,
                                  batch_wait_timeout_s=0.05, version="3")
    deployment = app._bound_deployment
    instance = deployment.func_or_class(*deployment.init_args)
    instance.reconfigure(deployment._deployment_config.user_config)
    return instance


def test_the_deployment_batches_concurrent_requests_and_answers_the_models_predictions(replica,
                                                                                        tiny_model_file):
    _, model = tiny_model_file
    images = np.random.default_rng(0).random((6, 28, 28, 1)).astype("float32")
    sizes, forward = [], replica.model

    def recording(batch, training=False):
        sizes.append(len(batch))
        return forward(batch, training=training)

    replica.model = recording

    async def six_at_once():
        return await asyncio.gather(*(replica(_post({"instances": images[i:i + 1].tolist()}))
                                      for i in range(6)))

    answers = asyncio.run(six_at_once())
    assert [a["version"] for a in answers] == ["3"] * 6
    predicted = np.array([a["predictions"][0] for a in answers])
    np.testing.assert_allclose(predicted, model.predict(images, verbose=0), atol=1e-6)
    assert sum(sizes) == 6 and max(sizes) > 1          # batched, each request answered its own


@pytest.mark.parametrize("body, detail", [
    (b"{not json", "not JSON"), ({"instances": []}, "one 28x28x1 image"),
    ({"instances": [np.zeros((28, 28)).tolist()]}, "got shape 28x28"),
    ({"instances": [np.full((28, 28, 1), np.nan).tolist()]}, "NaN"),
    ({"instances": {"a": 1}}, "got dict instead"),
])
def test_the_deployment_answers_bad_requests_with_400_and_a_message(replica, body, detail):
    answer = asyncio.run(replica(_post(body)))
    assert answer.status_code == 400
    assert detail in json.loads(answer.body)["error"]
