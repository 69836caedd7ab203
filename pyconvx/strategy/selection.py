"""Choosing a model with one optimizing metric and any number of satisficing ones: among the
candidates that meet every constraint (e.g. latency at most 100 ms), take the best by the
optimizing metric (e.g. accuracy).

>>> result = select_model({"A": {"accuracy": 0.90, "latency_ms": 80},
...                        "B": {"accuracy": 0.92, "latency_ms": 95},
...                        "C": {"accuracy": 0.95, "latency_ms": 1500}},
...                       optimize=("accuracy", "max"), satisfice={"latency_ms": ("<=", 100)})
>>> result.name, result.metrics["accuracy"]
('B', 0.92)
"""
import operator
import time

import numpy as np

from ._common import count, table

__all__ = ["select_model", "Selection", "NoFeasibleModel", "measure_latency", "OPERATORS"]

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
             "!=": operator.ne}


class NoFeasibleModel(ValueError):
    """No candidate meets every satisficing constraint; `table` shows what each one broke."""

    def __init__(self, message, table_text):
        super().__init__(f"{message}\n{table_text}")
        self.table = table_text


class Selection:
    """The result of `select_model`: `name` and `metrics` of the winner, `broken`
    {candidate: [broken constraints as text]}, `feasible` (names meeting every constraint),
    `reason` (why the winner won) and str(), a table of every candidate."""

    def __init__(self, name, candidates, broken, optimize, reason, table_text):
        self.name, self.metrics = name, dict(candidates[name])
        self.candidates, self.broken, self.optimize = candidates, broken, optimize
        self.feasible = [n for n in candidates if not broken[n]]
        self.reason, self.table = reason, table_text

    def __repr__(self):
        return f"Selection(name={self.name!r}, {self.optimize[0]}={self.metrics[self.optimize[0]]!r})"

    def __str__(self):
        return f"{self.table}\n{self.reason}"


def _checked(candidates, optimize, satisfice):
    if not isinstance(candidates, dict) or not candidates:
        raise ValueError(f"candidates must be a non-empty dict of name -> {{metric: value}}, got {candidates!r}")
    if isinstance(optimize, str):
        optimize = (optimize, "max")
    if not (isinstance(optimize, (tuple, list)) and len(optimize) == 2 and optimize[1] in ("max", "min")):
        raise ValueError(f"optimize must be (metric, 'max' or 'min'), got optimize={optimize!r}")
    satisfice = dict(satisfice or {})
    for metric, constraint in satisfice.items():
        if not (isinstance(constraint, (tuple, list)) and len(constraint) == 2):
            raise ValueError(f"satisfice[{metric!r}] must be (operator, threshold), got {constraint!r}")
        if constraint[0] not in OPERATORS:
            raise ValueError(f"satisfice[{metric!r}] has unknown operator {constraint[0]!r}; "
                             f"use one of {list(OPERATORS)}")
    needed = [optimize[0]] + [m for m in satisfice if m != optimize[0]]
    for name, measured in candidates.items():
        missing = [m for m in needed if m not in measured]
        if missing:
            raise ValueError(f"candidate {name!r} lacks metrics {missing} (it has {sorted(measured)})")
    return tuple(optimize), satisfice, needed


def select_model(candidates, optimize=("accuracy", "max"), satisfice=None):
    """The best candidate by the optimizing metric among those meeting every satisficing
    constraint.

    candidates: {name: {metric: value}}; optimize: (metric, "max" or "min") or a metric name
    (maximised); satisfice: {metric: (operator, threshold)}, operators <, <=, >, >=, ==, !=.
    Ties go to the candidate listed first. Returns a `Selection`; raises `NoFeasibleModel` (a
    ValueError, with the table) when no candidate meets every constraint, and ValueError for a
    missing metric or an unknown operator.

    >>> result = select_model({"small": {"error": 0.08, "false_positives": 0},
    ...                        "large": {"error": 0.05, "false_positives": 2}},
    ...                       optimize=("error", "min"), satisfice={"false_positives": ("<", 1)})
    >>> print(result)
    candidate  error  false_positives  broken constraints
    -----------------------------------------------------------------
    small       0.08                0  -                    <- chosen
    large       0.05                2  false_positives < 1
    small wins: lowest error (0.08) of the 1 candidate(s) meeting false_positives < 1;
    large has a lower error (0.05) but breaks false_positives < 1
    """
    optimize, satisfice, needed = _checked(candidates, optimize, satisfice)
    metric, direction = optimize
    broken = {name: [f"{m} {op} {threshold}" for m, (op, threshold) in satisfice.items()
                     if not OPERATORS[op](measured[m], threshold)] for name, measured in candidates.items()}
    feasible = [name for name in candidates if not broken[name]]
    better = operator.gt if direction == "max" else operator.lt
    winner = None
    for name in feasible:
        if winner is None or better(candidates[name][metric], candidates[winner][metric]):
            winner = name
    rows = [[name] + [candidates[name][m] for m in needed] + ["; ".join(broken[name]) or "-"] +
            (["<- chosen"] if name == winner else [""]) for name in candidates]
    table_text = table(["candidate"] + needed + ["broken constraints", ""], rows,
                       "l" + "r" * len(needed) + "ll")
    constraints = ", ".join(f"{m} {op} {t}" for m, (op, t) in satisfice.items()) or "no constraint"
    if winner is None:
        raise NoFeasibleModel(f"no candidate meets every constraint ({constraints})", table_text)
    word = "highest" if direction == "max" else "lowest"
    reason = (f"{winner} wins: {word} {metric} ({candidates[winner][metric]}) of the {len(feasible)} "
              f"candidate(s) meeting {constraints}")
    beaten_by = [name for name in candidates if broken[name] and better(candidates[name][metric],
                                                                         candidates[winner][metric])]
    for name in beaten_by:
        reason += (f"; {name} has a {'higher' if direction == 'max' else 'lower'} {metric} "
                   f"({candidates[name][metric]}) but breaks {'; '.join(broken[name])}")
    return Selection(winner, candidates, broken, optimize, reason, table_text)


def measure_latency(model, x, repeats=5, batch_size=None):
    """The per-example running time of model.predict on x, in milliseconds: the median over
    `repeats` timed calls (after one untimed warm-up call) divided by len(x).

    model: anything with predict(x, batch_size=...), e.g. a pyconvx Sequential; x (N,) +
    input_shape (a list of such arrays for a model with several inputs); batch_size defaults to
    N (one batch). Returns a float (ms per example).

    >>> from pyconvx import Sequential, layers
    >>> model = Sequential([layers.Flatten(), layers.Dense(2)], input_shape=(1, 4, 4), seed=0)
    >>> measure_latency(model, np.zeros((8, 1, 4, 4), np.float32), repeats=3) > 0
    True
    """
    if not hasattr(model, "predict"):
        raise ValueError(f"model must have a predict method, got {type(model).__name__}")
    repeats = count(repeats, "repeats", minimum=1)
    n = len(x[0]) if isinstance(x, (list, tuple)) and x else len(x)
    if n == 0:
        raise ValueError("x is empty: latency is measured per example")
    batch_size = n if batch_size is None else count(batch_size, "batch_size", minimum=1)
    model.predict(x, batch_size=batch_size)  # warm-up: first-call allocations are not the steady state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=batch_size)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0 / n
