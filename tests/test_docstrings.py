"""The examples in the public docstrings run and print what they claim."""

import doctest
import importlib

import numpy as np
import pytest

import pyconvx
import pyconvx._optional
import pyconvx.models
import pyconvx.ops
import pyconvx.runtime
from pyconvx import (augment, callbacks, datasets, label_metrics, losses, metrics, model, optimizers, recipes,
                     test_time, torch_weights, transfer, weights_file)
from pyconvx.augment import color, compose, crops, geometric, sampling, tiling
from pyconvx.data import disk, images, loader
from pyconvx.distributed import training
from pyconvx.layers import (activation, base, blocks, conv, core, dense, graph, initializers, merge, normalization,
                            pooling)
from pyconvx.strategy import diagnosis, error_analysis, selection, splits

LAYER_MODULES = [pyconvx.layers, base, activation, conv, core, dense, initializers, normalization, pooling, graph,
                 merge, blocks]
NETWORK_MODULES = [losses, metrics, label_metrics, optimizers, callbacks, model, weights_file, torch_weights, datasets,
                   recipes, transfer]
# The builder functions shadow their modules' names in pyconvx.models.
MODEL_MODULES = [pyconvx.models] + [importlib.import_module(f"pyconvx.models.{name}")
                                    for name in ("lenet", "alexnet", "vgg", "resnet", "googlenet")]


STRATEGY_MODULES = [pyconvx.strategy, splits, selection, diagnosis, error_analysis]
AUGMENT_MODULES = [augment, compose, crops, geometric, color, sampling, tiling, test_time]
DATA_MODULES = [pyconvx.data, loader, images, disk]
DISTRIBUTED_MODULES = [pyconvx.distributed, training]


ALL_MODULES = ([pyconvx, pyconvx.ops, pyconvx.runtime, pyconvx._optional, pyconvx.embedding] + LAYER_MODULES
               + NETWORK_MODULES + MODEL_MODULES + STRATEGY_MODULES + AUGMENT_MODULES + DATA_MODULES
               + DISTRIBUTED_MODULES)


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    globs = {"np": np, "pyconvx": pyconvx, "filters": pyconvx.filters}
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_every_public_op_has_an_example():
    for name in pyconvx.ops.__all__:
        obj = getattr(pyconvx.ops, name)
        if callable(obj) and name not in ("max_pool2d_backward", "avg_pool2d_backward", "global_avg_pool2d_backward",
                                          "col2im"):
            assert ">>>" in (obj.__doc__ or ""), f"{name} has no example"
