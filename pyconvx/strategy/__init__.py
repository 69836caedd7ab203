"""The tools for structuring a machine-learning project: train/dev/test splits, choosing a model
by optimizing and satisficing metrics, the bias/variance/data-mismatch diagnosis against
human-level error, and error analysis. Pure Python and NumPy; the classification metrics are in
`pyconvx.metrics`.

>>> from pyconvx import strategy
>>> strategy.diagnose(train_error=0.02, dev_error=0.10, human_error=0.01).focus
'variance'
"""
from .diagnosis import RECOMMENDATIONS, Diagnosis, HumanLevel, diagnose, human_level_error
from .error_analysis import ErrorAnalysis, ErrorTable, MislabeledAnalysis, mislabeled_analysis, sample_errors
from .selection import OPERATORS, NoFeasibleModel, Selection, measure_latency, select_model
from .splits import MismatchedSplit, Subset, default_split_sizes, mismatched_split, train_dev_test_split

__all__ = ["train_dev_test_split", "default_split_sizes", "mismatched_split", "MismatchedSplit", "Subset",
           "select_model", "Selection", "NoFeasibleModel", "measure_latency", "OPERATORS",
           "diagnose", "Diagnosis", "human_level_error", "HumanLevel", "RECOMMENDATIONS",
           "ErrorAnalysis", "ErrorTable", "sample_errors", "mislabeled_analysis", "MislabeledAnalysis"]
