"""pyconvx: fast CPU convolution, pooling and GEMM for NumPy arrays (NCHW float32).

>>> import numpy as np, pyconvx
>>> y = pyconvx.conv2d(np.random.rand(8, 3, 32, 32), np.random.rand(16, 3, 3, 3), padding="same")
>>> y.shape
(8, 16, 32, 32)
"""
import warnings as _warnings

from . import (augment, callbacks, data, datasets, distributed, filters, layers, losses, metrics, models, ops, optimizers,
               strategy, transfer)
from ._version import __version__
from .embedding import get_cmake_dir, get_include, get_library_path
from .model import Input, Model, Sequential
from .ops import *  # noqa: F401,F403  (the functional ops are the top-level API)
from .ops import __all__ as _ops_all
from .runtime import (autotune_cache_info, cpu_info, get_autotune, get_flush_denormals, get_num_threads,
                      get_workspace_limit, measure_peak_gflops, reset_workspace_peak, set_autotune,
                      set_autotune_cache, set_flush_denormals, set_num_threads, set_workspace_limit, thread_limit,
                      workspace_usage)
from .test_time import Ensemble, multi_crop_predict

__all__ = ["augment", "data", "distributed", "filters", "ops", "datasets", "layers", "models", "losses", "metrics",
           "optimizers", "callbacks", "strategy", "transfer", "get_include", "get_cmake_dir", "get_library_path",
           "Sequential", "Model", "Input", "Ensemble", "multi_crop_predict", "__version__",
           "cpu_info", "get_num_threads", "measure_peak_gflops", "set_num_threads", "thread_limit", "workspace_usage",
           "set_flush_denormals", "get_flush_denormals", "set_autotune", "get_autotune",
           "set_autotune_cache", "autotune_cache_info",
           "reset_workspace_peak", "set_workspace_limit", "get_workspace_limit"] + list(_ops_all)

if cpu_info()["note"]:
    _warnings.warn(cpu_info()["note"], RuntimeWarning, stacklevel=2)
