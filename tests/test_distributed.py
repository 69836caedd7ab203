"""pyconvx.distributed: ensembles and sweeps trained as Dask tasks on a LocalCluster of two worker
processes, rebuilt from their weights, retried when a task raises or its worker is killed.

The tests needing Dask skip without it (pip install "pyconvx[distributed]"); the build functions
live at module level so that the workers can unpickle them."""
import functools
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

import pyconvx
from conftest import run_child
from pyconvx import layers, strategy
from pyconvx.distributed import TaskFailed, TrainingResults, grid_points, sweep, train_ensemble


def toy_data(n=256, seed=0):
    """Noise images labelled by which half is brighter."""
    x = np.random.default_rng(seed).normal(0, 1, (n, 1, 8, 8)).astype(np.float32)
    return x, (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)


def build(seed, units=4, learning_rate=0.01):
    model = pyconvx.Sequential([layers.Conv2D(units, 3, activation="relu"), layers.Flatten(), layers.Dense(2)],
                               input_shape=(1, 8, 8), seed=seed)
    model.compile(optimizer=pyconvx.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_unbuilt(seed):
    """A Sequential without input_shape, built by its first batch."""
    model = pyconvx.Sequential([layers.Flatten(), layers.Dense(2)], seed=seed)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def build_marking(seed, units, marker_dir, hold_pid=None):
    """build, leaving a file "<pid>-<units>" that says which process is about to train which point;
    in the process `hold_pid`, waits to be killed first (so that the kill lands mid-task however
    fast the machine trains)."""
    open(os.path.join(marker_dir, f"{os.getpid()}-{units}"), "w").close()
    if os.getpid() == hold_pid:
        time.sleep(300)
    return build(seed, units)


def build_failing_once(seed, units, marker_dir):
    """For units=2, raises on the first call made in a worker; builds otherwise."""
    marker = os.path.join(marker_dir, "failed once")
    if units == 2 and _in_worker() and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError(f"flaky build for units={units}")
    return build(seed, units)


def build_always_failing(seed, units):
    if units == 3 and _in_worker():
        raise ValueError("units=3 is broken")
    return build(seed, units)


def _in_worker():
    from distributed import get_worker
    try:
        get_worker()
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


def test_ensemble_members_train_remotely_as_they_would_locally(client, restore_threads):
    x, y = toy_data()
    results = train_ensemble(build, 3, x, y, {"epochs": 4, "batch_size": 32}, client=client, seeds=[5, 6, 7])
    assert isinstance(results, TrainingResults) and [r.name for r in results] == ["model_0", "model_1", "model_2"]
    assert [r.seed for r in results] == [5, 6, 7] and results.retries == 0
    assert {r.worker for r in results} <= set(client.scheduler_info()["workers"])
    pyconvx.set_num_threads(1)
    local = build(6)
    local.fit(x, y, epochs=4, batch_size=32, verbose=0, seed=6)
    for got, want in zip(results[1].model.get_weights(), local.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert all(isinstance(w, np.ndarray) for w in results[1].weights)
    assert results[1].metrics["loss"] == pytest.approx(local.history.history["loss"][-1], rel=1e-5)
    predictions = [model.predict(x[:16]) for model in results.models]
    assert not np.allclose(predictions[0], predictions[1])  # different seeds, different members
    np.testing.assert_allclose(results.ensemble().predict(x[:16]), np.mean(predictions, axis=0), rtol=1e-5, atol=1e-6)


def test_sweep_on_a_scheduler_address_feeds_select_model(client):
    x, y = toy_data()
    x_dev, y_dev = toy_data(64, seed=1)
    grid = {"units": [2, 8], "learning_rate": [0.001, 0.03]}
    results = sweep(build, grid, x, y, {"epochs": 4, "validation_data": (x_dev, y_dev)},
                    client=client.scheduler.address)
    assert [r.params for r in results] == grid_points(grid)
    candidates = results.candidates()
    assert list(candidates) == ["units=2, learning_rate=0.001", "units=2, learning_rate=0.03",
                                "units=8, learning_rate=0.001", "units=8, learning_rate=0.03"]
    assert set(candidates["units=8, learning_rate=0.03"]) == {"loss", "accuracy", "val_loss", "val_accuracy",
                                                               "units", "learning_rate"}
    choice = strategy.select_model(candidates, optimize=("val_accuracy", "max"), satisfice={"units": ("<=", 8)})
    chosen = results.by_name(choice.name)
    dev_accuracy = float(np.mean(chosen.model.predict(x_dev).argmax(axis=1) == y_dev))
    assert dev_accuracy == pytest.approx(candidates[choice.name]["val_accuracy"], abs=1e-9)
    assert dev_accuracy == max(row["val_accuracy"] for row in candidates.values())
    with_latency = results.candidates(measure=lambda model: {"latency_ms": strategy.measure_latency(model, x_dev)})
    assert all(row["latency_ms"] > 0 for row in with_latency.values())


def test_the_same_data_twice_on_one_client(client):
    # Scattering the data under its content's hash gave the second call the key of the first
    # call's data while the scheduler was still releasing it: every task came back cancelled.
    x, y = toy_data(64)
    for _ in range(3):
        results = train_ensemble(build, 2, x, y, {"epochs": 1}, client=client)
        assert results.retries == 0 and all(np.isfinite(r.metrics["loss"]) for r in results)


def test_without_a_client_an_embedded_cluster_runs_the_tasks_and_closes():
    pytest.importorskip("distributed")
    x, y = toy_data(64)
    [result] = train_ensemble(build, 1, x, y, {"epochs": 1})
    assert result.worker.startswith("tcp://") and result.retries == 0 and result.metrics["loss"] > 0
    host, port = result.worker[len("tcp://"):].rsplit(":", 1)
    with pytest.raises(OSError):  # the embedded cluster's worker is gone with it
        socket.create_connection((host, int(port)), timeout=2).close()


def test_a_task_trains_with_one_kernel_thread_and_returns_plain_data(restore_threads):
    from pyconvx.distributed.training import _train_task

    pyconvx.set_num_threads(2)
    x, y = toy_data(32)
    outcome = _train_task(build, {"units": 2}, 3, (x, y, None), {"epochs": 2})
    assert pyconvx.get_num_threads() == 1
    assert set(outcome) == {"weights", "history", "seconds", "worker"} and outcome["worker"] == f"pid {os.getpid()}"
    assert all(type(w) is np.ndarray for w in outcome["weights"]) and len(outcome["history"]["loss"]) == 2


def test_an_unbuilt_sequential_is_rebuilt_from_the_data(client):
    x, y = toy_data(64)
    [result] = train_ensemble(build_unbuilt, 1, x, y, {"epochs": 1}, client=client)
    assert result.model.built and result.model.predict(x[:2]).shape == (2, 2)


def test_a_task_that_raises_is_retried_and_its_errors_reported(client, tmp_path):
    x, y = toy_data(64)
    flaky = functools.partial(build_failing_once, marker_dir=str(tmp_path))
    results = sweep(flaky, {"units": [1, 2]}, x, y, {"epochs": 1}, client=client)
    assert [r.retries for r in results] == [0, 1]
    assert results[1].errors == ["RuntimeError: flaky build for units=2"]


def test_a_task_failing_every_attempt_raises_with_the_other_results(client):
    x, y = toy_data(64)
    with pytest.raises(TaskFailed, match="1 of 2 tasks failed after 2 attempts") as info:
        sweep(build_always_failing, {"units": [2, 3]}, x, y, {"epochs": 1}, client=client, retries=1)
    assert info.value.failures == {"units=3": ["ValueError: units=3 is broken"] * 2}
    assert [r.name for r in info.value.results] == ["units=2"]


def test_a_killed_worker_s_task_runs_again_and_every_task_reports(client, tmp_path):
    x, y = toy_data()
    pids = client.run(os.getpid)  # {worker address: pid}
    victim = sorted(pids.values())[0]
    marking = functools.partial(build_marking, marker_dir=str(tmp_path), hold_pid=victim)
    outcome = {}

    def run_sweep():
        try:
            outcome["results"] = sweep(marking, {"units": [2, 3, 4]}, x, y, {"epochs": 100}, client=client)
        except BaseException as exc:  # reported by the main thread's assertions
            outcome["error"] = exc

    thread = threading.Thread(target=run_sweep)
    thread.start()
    deadline = time.monotonic() + 60
    started = []
    while not started and time.monotonic() < deadline:
        started = [name for name in os.listdir(tmp_path) if name.startswith(f"{victim}-")]
        time.sleep(0.02)
    assert started, "no task started on the worker to kill"
    os.kill(victim, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    results = outcome["results"]
    assert [r.name for r in results] == ["units=2", "units=3", "units=4"]
    killed = results.by_name(f"units={started[0].split('-')[1]}")
    assert killed.retries >= 1 and killed.errors == []
    assert victim not in client.run(os.getpid).values()
    assert all(np.isfinite(r.metrics["loss"]) and r.metrics["accuracy"] > 0.5 for r in results)


@pytest.mark.parametrize("call, error, message", [
    (lambda: train_ensemble(build, 2, *toy_data(8), client=42), TypeError, "got int"),
    (lambda: train_ensemble(build, 2, *toy_data(8), fit_kwargs={"epoch": 2}), ValueError, "'epoch'"),
    (lambda: train_ensemble(build, 2, *toy_data(8), fit_kwargs=[("epochs", 2)]), TypeError, "fit_kwargs"),
    (lambda: train_ensemble(build, 2, *toy_data(8), seeds=[1]), ValueError, "seeds=[1]"),
    (lambda: train_ensemble(build, 2, *toy_data(8), seeds=[1, -2]), ValueError, "-2"),
    (lambda: train_ensemble(build, True, *toy_data(8)), ValueError, "n_models=True"),
    (lambda: train_ensemble("build", 2, *toy_data(8)), TypeError, "build_fn"),
    (lambda: train_ensemble(lambda seed: "not a model", 1, *toy_data(8)), TypeError, "got str"),
    (lambda: train_ensemble(build, 1, toy_data(8)[0], toy_data(9)[1]), ValueError, "8 and 9"),
    (lambda: train_ensemble(build, 1, *toy_data(8), retries=-1), ValueError, "retries=-1"),
    (lambda: sweep(build, {"units": []}, *toy_data(8)), ValueError, "param_grid['units']"),
    (lambda: sweep(build, {"units": [2, 2]}, *toy_data(8)), ValueError, "'units=2' twice"),
    (lambda: sweep(build, [], *toy_data(8)), ValueError, "param_grid=[]"),
    (lambda: sweep(build, {"units": [2]}, *toy_data(8), seed=1.5), ValueError, "1.5"),
])
def test_bad_arguments_fail_before_any_cluster_starts(call, error, message, monkeypatch):
    import pyconvx.distributed.training as training

    def no_cluster(*args):
        raise AssertionError("a cluster was started")

    if message != "got int":
        monkeypatch.setattr(training, "_connect", no_cluster)
    else:
        pytest.importorskip("distributed")
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_pyconvx_imports_without_dask_and_says_which_extra_to_install():
    blocker = ("import sys\n"
               "for name in ('dask', 'distributed'):\n"
               "    sys.modules[name] = None\n"
               "import numpy as np, pyconvx, pyconvx.distributed\n"
               "x = np.zeros((4, 1, 8, 8), np.float32)\n"
               "sys.path.insert(0, sys.argv[1])\n"
               "from test_distributed import build\n"
               "try:\n"
               "    pyconvx.distributed.train_ensemble(build, 1, x, np.zeros(4, np.int64))\n"
               "except ImportError as exc:\n"
               "    print(exc)\n")
    out = run_child(blocker, os.path.dirname(os.path.abspath(__file__)), timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "pyconvx[distributed]"' in out.stdout and "needs distributed" in out.stdout
