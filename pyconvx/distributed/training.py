"""Independent trainings as tasks on a Dask distributed cluster: the members of an ensemble, or
the points of a hyper-parameter grid.

Each task builds a model with `build_fn`, trains it with one kernel thread and its own seed, and
sends back the weights as NumPy arrays (never a pickled model); the caller rebuilds every model
locally with the same `build_fn` and those weights. A task whose worker dies is rescheduled by
the scheduler, one that raises is submitted again (up to `retries` times), and both count in the
task's `retries`; a task that still fails raises `TaskFailed`, never vanishes from the results.

Dask is optional (`pip install "pyconvx[distributed]"`): this module imports without it and only
the functions that run tasks need it.

>>> grid_points({"units": [8, 16], "learning_rate": [0.01]})
[{'units': 8, 'learning_rate': 0.01}, {'units': 16, 'learning_rate': 0.01}]
"""
import inspect
import itertools
import numbers
import os
import time
import uuid
import warnings

import numpy as np

from .._optional import require
from ..runtime import set_num_threads
from ..test_time import Ensemble

__all__ = ["train_ensemble", "sweep", "grid_points", "TrainedModel", "TrainingResults", "TaskFailed",
           "DEFAULT_RETRIES"]

#: How many times a task that raised is submitted again before TaskFailed.
DEFAULT_RETRIES = 2


class TrainedModel:
    """One training task's outcome.

    `name` ("model_0", ... for an ensemble; "units=8, learning_rate=0.01" for a sweep), `params`
    (the keyword arguments given to build_fn besides seed), `seed`, `model` (rebuilt locally
    from the returned weights), `weights` (those arrays, in get_weights() order), `history`
    ({figure: one value per epoch}, as fit's History), `metrics` (each figure's last value:
    "loss", "accuracy", "val_loss", ...), `retries` (how many times the task ran again: its
    worker died mid-task or it raised), `errors` (the messages of the attempts that raised),
    `worker` (the address of the worker that finished it) and `seconds` (its build and
    training time there).

    >>> result = TrainedModel("model_0", {}, 0, None, [], {"loss": [0.9, 0.4]}, 0, [], "local", 1.5)
    >>> result.metrics, result
    ({'loss': 0.4}, TrainedModel(name='model_0', loss=0.4, retries=0))
    """

    def __init__(self, name, params, seed, model, weights, history, retries, errors, worker, seconds):
        self.name, self.params, self.seed, self.model, self.weights = name, dict(params), seed, model, weights
        self.history = {key: list(values) for key, values in history.items()}
        self.metrics = {key: values[-1] for key, values in self.history.items() if values}
        self.retries, self.errors, self.worker, self.seconds = retries, list(errors), worker, seconds

    def __repr__(self):
        figures = "".join(f", {key}={value:.4g}" for key, value in self.metrics.items())
        return f"TrainedModel(name={self.name!r}{figures}, retries={self.retries})"


class TrainingResults(list):
    """The TrainedModels of train_ensemble or sweep, in the order of the tasks, with ways to feed
    them to `pyconvx.Ensemble` and `pyconvx.strategy.select_model`.

    >>> results = TrainingResults([TrainedModel("a", {"units": 8}, 0, None, [], {"accuracy": [0.9]}, 1, [], "w", 1.0),
    ...                            TrainedModel("b", {"units": 16}, 0, None, [], {"accuracy": [0.8]}, 0, [], "w", 1.0)])
    >>> results.candidates()
    {'a': {'accuracy': 0.9, 'units': 8}, 'b': {'accuracy': 0.8, 'units': 16}}
    >>> results.by_name("b").params, results.retries
    ({'units': 16}, 1)
    """

    @property
    def models(self):
        """The rebuilt models, in task order."""
        return [result.model for result in self]

    @property
    def retries(self):
        """The retries of all tasks together."""
        return sum(result.retries for result in self)

    def ensemble(self):
        """A pyconvx.Ensemble of the models: its predict averages theirs."""
        return Ensemble(self.models)

    def by_name(self, name):
        """The TrainedModel called `name` (e.g. the name select_model chose)."""
        for result in self:
            if result.name == name:
                return result
        raise ValueError(f"no result named {name!r}; the names are {[result.name for result in self]}")

    def candidates(self, measure=None):
        """{name: {metric: value}} for select_model: each task's last-epoch figures, its numeric
        parameters and, when `measure` is given, what measure(model) returns (a dict, e.g.
        {"latency_ms": measure_latency(model, x_dev)})."""
        table = {}
        for result in self:
            row = dict(result.metrics)
            row.update({key: value for key, value in result.params.items()
                        if isinstance(value, numbers.Real) and not isinstance(value, bool) and key not in row})
            if measure is not None:
                extra = measure(result.model)
                if not isinstance(extra, dict):
                    raise TypeError(f"measure must return a dict of metrics, got {type(extra).__name__} for "
                                    f"{result.name!r}")
                row.update(extra)
            table[result.name] = row
        return table


class TaskFailed(RuntimeError):
    """Some tasks still failed after their retries. `failures` is {task name: [the error of each
    attempt]}; `results` holds the TrainingResults of the tasks that did finish."""

    def __init__(self, what, failures, results, attempts):
        lines = [f"  {name}: {errors[-1]}" for name, errors in failures.items()]
        super().__init__(f"{what}: {len(failures)} of {len(failures) + len(results)} tasks failed after "
                         f"{attempts} attempts each:\n" + "\n".join(lines))
        self.failures, self.results = failures, results


def grid_points(param_grid):
    """The parameter dicts of a grid: every combination of a dict's value lists (the first key
    varies slowest), or a list of such dicts, one grid after the other.

    >>> grid_points([{"units": [4]}, {"units": [8], "dropout": [0.0, 0.5]}])
    [{'units': 4}, {'units': 8, 'dropout': 0.0}, {'units': 8, 'dropout': 0.5}]
    """
    grids = param_grid if isinstance(param_grid, (list, tuple)) else [param_grid]
    if not grids:
        raise ValueError("param_grid must hold at least one grid, got param_grid=[]")
    points = []
    for grid in grids:
        if not isinstance(grid, dict) or not grid:
            raise ValueError(f"param_grid must be a non-empty dict of name -> list of values (or a list of them), "
                             f"got {grid!r}")
        for name, values in grid.items():
            if not isinstance(name, str) or not name.isidentifier() or name == "seed":  # keyword arguments
                raise ValueError(f"param_grid: parameter names must be identifiers other than 'seed', got {name!r}")
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"param_grid[{name!r}] must be a non-empty list of values, got {values!r}")
        points += [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())]
    return points


_FIT_PARAMETERS = None


def _checked_fit_kwargs(fit_kwargs):
    """A copy of fit_kwargs, checked to name parameters of Model.fit other than x and y."""
    global _FIT_PARAMETERS
    if fit_kwargs is None:
        return {}
    if not isinstance(fit_kwargs, dict):
        raise TypeError(f"fit_kwargs must be a dict of Model.fit arguments, got {type(fit_kwargs).__name__}")
    if _FIT_PARAMETERS is None:
        from ..model import Model
        _FIT_PARAMETERS = [name for name in inspect.signature(Model.fit).parameters if name not in ("self", "x", "y")]
    unknown = [key for key in fit_kwargs if key not in _FIT_PARAMETERS]
    if unknown:
        raise ValueError(f"fit_kwargs has {unknown[0]!r}, which is not an argument of fit (those are "
                         f"{_FIT_PARAMETERS})")
    return dict(fit_kwargs)


def _checked_build_fn(build_fn):
    if not callable(build_fn):
        raise TypeError(f"build_fn must be a module-level function build_fn(seed=..., **params) returning a "
                        f"compiled model, got {build_fn!r}")
    return build_fn


def _built(build_fn, params, seed, x):
    """build_fn's model, built for x's samples (a Sequential without input_shape waits for data)."""
    model = build_fn(seed=seed, **params)
    for method in ("fit", "get_weights", "set_weights"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"build_fn must return a compiled model (with fit, get_weights and set_weights), "
                            f"got {type(model).__name__} for params={params!r}")
    if not getattr(model, "built", True):
        model.build(np.shape(x)[1:])
    return model


def _train_task(build_fn, params, seed, data, fit_kwargs):
    """What a worker runs: build, fit with one kernel thread and `seed`, return plain data."""
    # Workers are processes with one thread each, sized to the cores: a second kernel thread per
    # task would only contend with the neighbouring worker.
    set_num_threads(1)
    x, y, validation_data = data
    start = time.perf_counter()
    model = _built(build_fn, params, seed, x)
    kwargs = {"verbose": 0, "seed": seed, **fit_kwargs}
    if validation_data is not None:
        kwargs["validation_data"] = validation_data
    history = model.fit(x, y, **kwargs)
    try:
        from distributed import get_worker
        worker = get_worker().address
    except (ImportError, ValueError):  # run outside a worker
        worker = f"pid {os.getpid()}"
    return {"weights": model.get_weights(), "seconds": time.perf_counter() - start, "worker": worker,
            "history": {key: [float(value) for value in values] for key, values in history.history.items()}}


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _connect(client, task_count):
    """(the Client to use, a function that closes what was opened here)."""
    distributed = require("distributed", "pyconvx.distributed", "distributed")
    if client is None:
        # Processes (no GIL contention), one thread each, no more than the cores or the tasks.
        cluster = distributed.LocalCluster(n_workers=max(1, min(_available_cores(), task_count)),
                                           threads_per_worker=1, processes=True,
                                           dashboard_address=":0")  # any free port: 8787 may be taken
        own = distributed.Client(cluster)
        return own, lambda: (own.close(), cluster.close())
    if isinstance(client, str):
        own = distributed.Client(client)
        return own, own.close
    if isinstance(client, distributed.Client):
        return client, lambda: None
    raise TypeError(f"client must be None (an embedded LocalCluster), a scheduler address such as "
                    f"'tcp://host:8786' or a dask.distributed.Client, got {type(client).__name__}")


def _worker_deaths(client, keys):
    """{key: how many times the task's worker died under it}, as the scheduler counts them."""
    keys = list(keys)

    def count(dask_scheduler):  # a closure, so pickled by value: the scheduler need not have pyconvx
        return {key: dask_scheduler.tasks[key].suspicious for key in keys if key in dask_scheduler.tasks}

    try:
        return client.run_on_scheduler(count)
    except Exception as exc:  # e.g. a scheduler that refuses run_on_scheduler
        warnings.warn(f"could not ask the scheduler how often workers died under the tasks ({exc}); the "
                      f"retries count only the tasks that raised", RuntimeWarning, stacklevel=3)
        return {}


def _run(what, build_fn, specs, x, y, fit_kwargs, client, retries):
    """Runs one task per (name, params, seed) of specs; returns TrainingResults in specs' order."""
    if isinstance(retries, bool) or not isinstance(retries, numbers.Integral) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got retries={retries!r}")
    fit_kwargs = _checked_fit_kwargs(fit_kwargs)
    validation_data = fit_kwargs.pop("validation_data", None)
    # One local build checks build_fn and the data before any cluster starts.
    _, params, seed = specs[0]
    probe = _built(build_fn, params, seed, x)
    if hasattr(probe, "_check_data"):
        probe._check_data(x, y, what)
    client, close = _connect(client, len(specs))
    try:
        return _run_on(client, what, build_fn, specs, (x, y, validation_data), fit_kwargs, retries)
    finally:
        close()


def _run_on(client, what, build_fn, specs, data, fit_kwargs, retries):
    from distributed import as_completed

    # The data go to every worker once, not with each task; a replica survives a worker's death.
    # hash=False: a fresh key per call, never one that an earlier call's release is still removing.
    [shared] = client.scatter([data], broadcast=True, hash=False)
    token = uuid.uuid4().hex[:8]
    attempts, errors, finished = [0] * len(specs), [[] for _ in specs], {}

    def submit(index):
        nonlocal shared
        if shared.status != "finished":  # every worker holding the data is gone
            [shared] = client.scatter([data], broadcast=True, hash=False)
        attempts[index] += 1
        _, params, seed = specs[index]
        return client.submit(_train_task, build_fn, params, seed, shared, fit_kwargs, pure=False,
                             key=f"pyconvx-{what}-{token}-{index}-attempt{attempts[index]}")

    futures = [submit(index) for index in range(len(specs))]
    index_of = {future.key: index for index, future in enumerate(futures)}
    pending = as_completed(futures)
    for future in pending:
        index = index_of[future.key]
        if future.status == "finished":
            finished[index] = (future, future.result())
            continue
        if future.status == "error":
            exc = future.exception()
            errors[index].append(f"{type(exc).__name__}: {exc}")
        else:
            errors[index].append(f"the task ended as {future.status!r} without a result")
        if attempts[index] <= retries:
            again = submit(index)
            index_of[again.key] = index
            pending.add(again)
    deaths = _worker_deaths(client, [future.key for future, _ in finished.values()])
    results = TrainingResults()
    for index, (name, params, seed) in enumerate(specs):
        if index not in finished:
            continue
        future, outcome = finished[index]
        model = _built(build_fn, params, seed, data[0])
        model.set_weights(outcome["weights"])
        results.append(TrainedModel(name, params, seed, model, outcome["weights"], outcome["history"],
                                    attempts[index] - 1 + deaths.get(future.key, 0), errors[index],
                                    outcome["worker"], outcome["seconds"]))
    failures = {specs[index][0]: errors[index] for index in range(len(specs)) if index not in finished}
    if failures:
        raise TaskFailed(what, failures, results, retries + 1)
    return results


def _seeds(seeds, count, name):
    if seeds is None:
        return list(range(count))
    seeds = list(seeds)
    if len(seeds) != count:
        raise ValueError(f"seeds must hold one seed per model ({count}), got {len(seeds)}: seeds={seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{name} must be non-negative integers, got {seed!r}")
    return [int(seed) for seed in seeds]


def train_ensemble(build_fn, n_models, x, y, fit_kwargs=None, client=None, seeds=None, retries=DEFAULT_RETRIES):
    """Trains n_models copies of build_fn's model independently, one Dask task each, differing
    only in their seed (initial weights, shuffling, dropout): the members of an ensemble.

    build_fn(seed=...) returns a compiled model (pyconvx.Model or Sequential); it must be a
    module-level function (workers unpickle it by reference, so its module must be importable
    there; a function of the __main__ script is sent by value) and is also called here to
    rebuild each model from its returned weights. x, y: as Model.fit takes them (x (N,) +
    input_shape, ...); they are sent to every worker once. fit_kwargs: Model.fit's other
    arguments (epochs, batch_size, validation_data, ...); verbose defaults to 0 and seed to the
    model's seed. seeds: one per model, default 0, 1, ..., n_models - 1. client: None starts an
    embedded LocalCluster (worker processes with one thread each, as many as the cores and no
    more than the tasks) and closes it at the end; a dask.distributed.Client, or a scheduler
    address such as "tcp://scheduler:8786", runs the tasks on that cluster, whose workers need
    pyconvx and build_fn's module. Each task trains with one kernel thread.

    A task whose worker dies is rescheduled by Dask; one that raises runs again up to `retries`
    times; both count in its `retries`. Tasks still failing raise TaskFailed (with the finished
    results attached). Returns TrainingResults of TrainedModel ("model_0", ...): `.models`,
    `.ensemble()` (a pyconvx.Ensemble), `.candidates()` for select_model.

    >>> from pyconvx.distributed import train_ensemble
    >>> results = train_ensemble(build, 5, x, y, {"epochs": 10}, client="tcp://scheduler:8786")  # doctest: +SKIP
    >>> train_ensemble(print, 0, np.zeros((4, 3)), np.zeros(4))
    Traceback (most recent call last):
    ...
    ValueError: n_models must be a positive integer, got n_models=0
    """
    build_fn = _checked_build_fn(build_fn)
    if isinstance(n_models, bool) or not isinstance(n_models, numbers.Integral) or n_models < 1:
        raise ValueError(f"n_models must be a positive integer, got n_models={n_models!r}")
    specs = [(f"model_{index}", {}, seed) for index, seed in enumerate(_seeds(seeds, int(n_models), "seeds"))]
    return _run("train_ensemble", build_fn, specs, x, y, fit_kwargs, client, retries)


def sweep(build_fn, param_grid, x, y, fit_kwargs=None, client=None, seed=0, retries=DEFAULT_RETRIES):
    """Trains one model per point of param_grid, one Dask task each, all from the same seed (so
    the candidates differ by their parameters only), and returns them with their parameters and
    metrics, ready for pyconvx.strategy.select_model.

    build_fn(seed=..., **params) returns a compiled model for one point (the same rules as for
    train_ensemble: a module-level function, called here again to rebuild the models).
    param_grid: {name: [values]} (every combination) or a list of such dicts, see grid_points.
    x, y, fit_kwargs, client and retries: as for train_ensemble; put validation_data in
    fit_kwargs to get "val_..." metrics. Returns TrainingResults named "name=value, ..." per
    point; results.candidates() is {name: {metric: value}} (last-epoch figures and the numeric
    parameters), and results.by_name(select_model(...).name).model the chosen model.

    >>> from pyconvx.distributed import sweep
    >>> results = sweep(build, {"units": [8, 32], "learning_rate": [1e-3, 1e-2]}, x, y,  # doctest: +SKIP
    ...                 {"epochs": 5, "validation_data": (x_dev, y_dev)})
    >>> sweep(print, {"seed": [1, 2]}, np.zeros((4, 3)), np.zeros(4))
    Traceback (most recent call last):
    ...
    ValueError: param_grid: parameter names must be identifiers other than 'seed', got 'seed'
    """
    build_fn = _checked_build_fn(build_fn)
    [seed] = _seeds([seed], 1, "seed")
    specs = [(", ".join(f"{key}={value}" for key, value in point.items()), point, seed)
             for point in grid_points(param_grid)]
    names = [name for name, _, _ in specs]
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"param_grid holds the point {repeated!r} twice")
    return _run("sweep", build_fn, specs, x, y, fit_kwargs, client, retries)
