"""Model selection by an optimizing metric under satisficing constraints; latency measurement."""
import numpy as np
import pytest

from pyconvx import Sequential, layers
from pyconvx.strategy import NoFeasibleModel, measure_latency, select_model

CANDIDATES = {"A": {"accuracy": 0.90, "latency_ms": 80, "false_positives": 0},
              "B": {"accuracy": 0.92, "latency_ms": 95, "false_positives": 0},
              "C": {"accuracy": 0.95, "latency_ms": 1500, "false_positives": 0},
              "D": {"accuracy": 0.97, "latency_ms": 50, "false_positives": 3}}
CONSTRAINTS = {"latency_ms": ("<=", 100), "false_positives": ("<", 1)}


def test_best_feasible_candidate_wins_and_the_table_says_why():
    result = select_model(CANDIDATES, optimize=("accuracy", "max"), satisfice=CONSTRAINTS)
    assert result.name == "B" and result.metrics == CANDIDATES["B"]
    assert result.feasible == ["A", "B"]
    assert result.broken["C"] == ["latency_ms <= 100"] and result.broken["D"] == ["false_positives < 1"]
    text = str(result)
    for name in CANDIDATES:
        assert f"\n{name} " in text
    assert "B wins: highest accuracy (0.92)" in text
    assert "C has a higher accuracy (0.95) but breaks latency_ms <= 100" in text
    assert "<- chosen" in [line for line in text.splitlines() if line.startswith("B ")][0]


@pytest.mark.parametrize("op, threshold, expected", [("<", 90, "D"), ("<=", 95, "D"), (">", 80, "C"), (">=", 95, "C"),
                                                     ("==", 95, "B"), ("!=", 50, "C")])
def test_every_operator(op, threshold, expected):
    assert select_model(CANDIDATES, "accuracy", {"latency_ms": (op, threshold)}).name == expected


def test_minimising_and_ties_go_to_the_first():
    assert select_model(CANDIDATES, ("latency_ms", "min")).name == "D"
    tied = {"x": {"accuracy": 0.9}, "y": {"accuracy": 0.9}}
    assert select_model(tied).name == "x"


def test_no_feasible_candidate_raises_with_the_table():
    with pytest.raises(NoFeasibleModel, match=r"no candidate meets every constraint \(latency_ms < 10\)") as info:
        select_model(CANDIDATES, satisfice={"latency_ms": ("<", 10)})
    assert isinstance(info.value, ValueError) and "latency_ms < 10" in info.value.table


@pytest.mark.parametrize("kwargs, message", [
    ({"satisfice": {"latency_ms": ("=<", 100)}}, r"unknown operator '=<'"),
    ({"satisfice": {"memory_mb": ("<", 100)}}, r"candidate 'A' lacks metrics \['memory_mb'\]"),
    ({"optimize": ("f1", "max")}, r"lacks metrics \['f1'\]"),
    ({"optimize": ("accuracy", "up")}, r"optimize must be"),
    ({"satisfice": {"latency_ms": 100}}, r"satisfice\['latency_ms'\] must be \(operator, threshold\)"),
])
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_model(CANDIDATES, **kwargs)
    with pytest.raises(ValueError, match="candidates must be"):
        select_model({})


def test_measure_latency_is_per_example_milliseconds():
    model = Sequential([layers.Flatten(), layers.Dense(3)], input_shape=(1, 4, 4), seed=0)
    calls = []

    class Counting:
        def predict(self, x, batch_size):
            calls.append((len(x), batch_size))
            return model.predict(x, batch_size=batch_size)

    latency = measure_latency(Counting(), np.zeros((16, 1, 4, 4), np.float32), repeats=4)
    assert 0 < latency < 1000 and calls == [(16, 16)] * 5  # one warm-up, then the timed repeats
    class TwoInputs:
        def predict(self, x, batch_size):
            calls.append((len(x), batch_size))

    calls.clear()
    assert measure_latency(TwoInputs(), [np.zeros((4, 3)), np.zeros((4, 5))], repeats=1) > 0
    assert calls == [(2, 4)] * 2  # the batch is the examples of each input, not the number of inputs
    with pytest.raises(ValueError, match="repeats=0"):
        measure_latency(model, np.zeros((2, 1, 4, 4)), repeats=0)
    with pytest.raises(ValueError, match="empty"):
        measure_latency(model, np.zeros((0, 1, 4, 4)))
    with pytest.raises(ValueError, match="predict method"):
        measure_latency(object(), np.zeros((2, 1, 4, 4)))
