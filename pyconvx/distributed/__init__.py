"""Scale-out: independent trainings (ensemble members, hyper-parameter sweeps) as tasks on a Dask
distributed cluster, an embedded LocalCluster by default. Needs the distributed extra,
pip install "pyconvx[distributed]", only when tasks run; importing this package does not.

>>> from pyconvx import distributed
>>> len(distributed.grid_points({"units": [4, 8, 16], "learning_rate": [0.01, 0.1]}))
6
"""
from .training import (DEFAULT_RETRIES, TaskFailed, TrainedModel, TrainingResults, grid_points, sweep,
                       train_ensemble)

__all__ = ["train_ensemble", "sweep", "grid_points", "TrainedModel", "TrainingResults", "TaskFailed",
           "DEFAULT_RETRIES"]
