"""Loading a torch module's state_dict into layers whose names follow the module's paths.

torch names a weight by the attribute path of its module and the parameter ("layer1.0.conv1.weight");
pyconvx names it by layer name and weight name ("layer1.0" / "conv1/kernel" inside a block). When
the layer names are the torch paths, as in pyconvx.models, the key of each pyconvx weight follows
from the layer's type. torch is never imported: tensors are read through .detach().cpu().numpy().
"""
import numpy as np

from .layers.base import writable
from .layers.conv import Conv2D
from .layers.dense import Dense
from .layers.normalization import BatchNormalization

__all__ = ["load_torch_state_dict", "torch_entries"]

# pyconvx weight name -> torch name, per layer type; Dense kernels are stored transposed.
_TORCH_NAMES = [
    (Conv2D, {"kernel": "weight", "bias": "bias"}),
    (Dense, {"kernel": "weight", "bias": "bias"}),
    (BatchNormalization, {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                          "moving_variance": "running_var"}),
]


def _names_for(layer):
    for cls, names in _TORCH_NAMES:
        if isinstance(layer, cls):
            return names
    return None


def torch_entries(layers, prefix=""):
    """(torch key, target array, transposed, pyconvx key) for every weight of `layers`, in order,
    descending into blocks (layers with `sublayers`).

    >>> from pyconvx.layers import Dense
    >>> layer = Dense(2, name="fc")
    >>> layer.build((3,))
    (2,)
    >>> [(key, transposed, ours) for key, _, transposed, ours in torch_entries([layer])]
    [('fc.weight', True, 'fc/kernel'), ('fc.bias', False, 'fc/bias')]
    """
    entries = []
    for layer in layers:
        path = f"{prefix}{layer.name}"
        sublayers = getattr(layer, "sublayers", None)
        if sublayers is not None:
            entries += torch_entries(sublayers, path + ".")
            continue
        weights = dict(zip(layer.weight_names(), layer._weight_arrays()))
        if not weights:
            continue
        names = _names_for(layer)
        if names is None:
            raise ValueError(f"layer {path!r} ({type(layer).__name__}) has weights but no torch equivalent")
        for key, array in weights.items():
            entries.append((f"{path}.{names[key]}", array, isinstance(layer, Dense) and key == "kernel",
                            f"{path}/{key}"))
    return entries


def _as_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def load_torch_state_dict(layers, state_dict, owner, strict=True):
    """Copies state_dict (a mapping of torch keys to tensors or arrays) into `layers`' weights;
    ValueError naming the first missing key, shape mismatch or unexpected key, before any copy.
    With strict=False missing and unexpected keys are skipped (shapes are still checked).
    Returns (missing keys, unexpected keys)."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"{owner}: load_torch_state_dict expects a mapping such as module.state_dict(), "
                        f"got {type(state_dict).__name__}")
    given = {key: value for key, value in state_dict.items() if not key.endswith("num_batches_tracked")}
    entries = torch_entries(layers)
    arrays, missing = [], []
    for key, target, transposed, ours in entries:
        if key not in given and not strict:
            missing.append(key)
            arrays.append(None)
            continue
        if key not in given:
            raise ValueError(f"{owner}: the state dict has no {key!r} (for weight {ours!r} of shape {target.shape})")
        value = _as_numpy(given[key])
        value = value.T if transposed else value
        if value.shape != target.shape:
            theirs, wanted = (value.T.shape, target.T.shape) if transposed else (value.shape, target.shape)
            note = f" (torch's (out, in) of the (in, out) kernel {target.shape})" if transposed else ""
            raise ValueError(f"{owner}: {key!r} has shape {theirs} in the state dict, but weight {ours!r} needs "
                             f"{wanted}{note}")
        arrays.append(value)
    expected = {key for key, _, _, _ in entries}
    unexpected = [key for key in given if key not in expected]
    if unexpected and strict:
        raise ValueError(f"{owner}: the state dict has {unexpected[0]!r}, which matches no weight of the model "
                         f"({len(unexpected)} unexpected key(s))")
    for (_, target, _, _), value in zip(entries, arrays):
        if value is not None:
            np.copyto(writable(target), value, casting="unsafe")
    return missing, unexpected
