"""Transfer learning: reusing a network trained on one task for another.

How much of the pretrained network to retrain depends on how much data the new task has:

- little data: keep every layer but the classifier, give it a new head for the new classes
  (`replace_head`, or `from_pretrained(..., freeze_up_to=...)`) and train the head only;
- the same, faster: run the frozen trunk once over the data set, store its activations on disk
  (`extract_features`) and train a shallow network on them (`split` gives the model's own head
  layers as that network, so the trained head is the model's);
- more data: freeze fewer layers, `model.freeze(up_to=...)` at any depth;
- lots of data: the pretrained weights are only the starting point, and everything trains;
- features learned for a narrow task: start halfway between them and a fresh network
  (`shrink_perturb`), and everything trains.

Pretrained weights come from a pyconvx weights file (`Model.save_weights`) or a torchvision-style
state dict: a mapping of torch keys to tensors or arrays, or an .npz file of one (saved with
`np.savez(path, **{k: v.numpy() for k, v in module.state_dict().items()})`; pyconvx reads
files without torch or pickle).

>>> from pyconvx import layers
>>> model = pyconvx.Sequential([layers.Dense(8, name="body"), layers.Dense(3, name="head")],
...                            input_shape=(4,), seed=0)
>>> new = replace_head(model, 5)
>>> new.freeze(up_to="body")
>>> new.output_shape, [layer.trainable for layer in new.layers]
((5,), [False, True])
"""
import numbers
import os

import numpy as np

from .layers.base import writable
from .layers.dense import Dense
from .layers.graph import Input
from .model import Model, Sequential
from .torch_weights import load_torch_state_dict
from .weights_file import atomic_write_features, is_weights_file, read_arrays, read_features

__all__ = ["split", "replace_head", "extract_features", "load_features", "load_pretrained", "from_pretrained",
           "shrink_perturb"]


def _single_output(model, what):
    if not isinstance(model, Model):
        raise TypeError(f"{what}: model must be a pyconvx Model or Sequential, got {type(model).__name__}")
    model._require_built(what)
    if not model._single_output:
        raise ValueError(f"{what}: model {model.name!r} has {len(model.output_names)} outputs; it works on "
                         f"models with one")


def split(model, at):
    """Cuts `model` after layer `at` (a name or an index into model.layers) into (trunk, head):
    trunk maps the model's inputs to that layer's output, head maps that output to the model's
    outputs. Both share the model's layers, weights included: training the head on features the
    trunk computed once (extract_features) trains the model's own head.

    Shapes: trunk (N,) + input_shape -> (N,) + F; head (N,) + F -> (N,) + output_shape, where F is
    layer `at`'s per-sample output shape. In a graph, every layer after the cut must take its
    inputs from the cut or from layers after it: ValueError names the first one reaching past
    it (a skip connection across the cut, or a second input entering later).

    >>> from pyconvx import layers
    >>> model = pyconvx.Sequential([layers.Flatten(), layers.Dense(6, name="body"), layers.Dense(2)],
    ...                            input_shape=(1, 4, 4), seed=0)
    >>> trunk, head = split(model, "body")
    >>> trunk.output_shape, head.input_shape, head.output_shape
    ((6,), (6,), (2,))
    >>> x = np.ones((3, 1, 4, 4), np.float32)
    >>> bool(np.allclose(head.predict(trunk.predict(x)), model.predict(x)))
    True
    """
    if not isinstance(model, Model):
        raise TypeError(f"split: model must be a pyconvx Model or Sequential, got {type(model).__name__}")
    model._require_built("split")
    index = model._layer_index(at)
    if index == len(model.layers) - 1:
        raise ValueError(f"split: at={at!r} is the model's last layer; nothing would be left for the head")
    if isinstance(model, Sequential):
        trunk = Sequential(model.layers[:index + 1], input_shape=model.input_shape, name=f"{model.name}_trunk")
        head = Sequential(model.layers[index + 1:], input_shape=trunk.output_shape, name=f"{model.name}_head")
        return trunk, head
    graph = model._graph
    cut = next(node for node in graph.nodes if node.layer is model.layers[index])
    before = {id(layer) for layer in graph.upstream_layers(cut.layer)}
    trunk = Model(graph.inputs if len(graph.inputs) > 1 else graph.inputs[0], cut, name=f"{model.name}_trunk")
    features = Input(cut.shape, name=cut.layer.name)
    replayed = {id(cut): features}
    for node in graph.nodes:
        if id(node.layer) in before:
            continue
        missing = [parent.name for parent in node.inputs if id(parent) not in replayed]
        if missing:
            raise ValueError(f"split: layer {node.layer.name!r} takes input {missing[0]!r}, which comes before the "
                             f"cut at {cut.layer.name!r} without going through it; cut at a later layer")
        parents = [replayed[id(parent)] for parent in node.inputs]
        replayed[id(node)] = node.layer(parents if node.layer.takes_list else parents[0])
    outputs = []
    for tensor in graph.outputs:
        if id(tensor) not in replayed:
            raise ValueError(f"split: the model's output {tensor.name!r} comes before the cut at {cut.layer.name!r}")
        outputs.append(replayed[id(tensor)])
    head = Model(features, outputs[0] if model._single_output else outputs, name=f"{model.name}_head")
    return trunk, head


def replace_head(model, num_classes, seed=None):
    """A model with `model`'s layers but a new, freshly initialised last layer with num_classes
    units: the classifier for a new set of classes. The old head must be a Dense layer; the new
    one takes its name, activation and use_bias (so the model's architecture is the one its
    builder gives for num_classes, and weight files of that architecture fit it). The other
    layers are shared with `model`, not copied, and keep their trainable flags; `seed` draws the
    new head's weights.

    Shapes: (N,) + input_shape -> (N, num_classes).

    >>> from pyconvx import models
    >>> old = models.lenet5(num_classes=5, seed=0)
    >>> new = replace_head(old, 3, seed=1)
    >>> new.output_shape, new.layers[-1].name, new.get_layer("f6") is old.get_layer("f6")
    ((3,), 'output', True)
    """
    _single_output(model, "replace_head")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive integer, got num_classes={num_classes!r}")
    output = model._graph.outputs[0]
    old = output.layer
    if not isinstance(old, Dense):
        raise TypeError(f"replace_head: the last layer {old.name!r} is a {type(old).__name__}, not a Dense "
                        f"classifier; build the new head with split() or the functional API")
    head = Dense(int(num_classes), activation=old.activation, use_bias=old.use_bias, name=old.name)
    if isinstance(model, Sequential):
        return Sequential(model.layers[:-1] + [head], input_shape=model.input_shape, name=model.name, seed=seed)
    inputs = model._graph.inputs
    return Model(inputs if len(inputs) > 1 else inputs[0], head(output.inputs[0]), name=model.name, seed=seed)


def _features_path(path):
    path = os.fspath(path)
    if not path.endswith(".npy"):
        raise ValueError(f"features are stored as .npy (an .npz archive cannot be memory-mapped), got path={path!r}")
    return path


def extract_features(model, x, layer, path, batch_size=256):
    """Runs `model` once over x up to layer `layer` (a name or an index) in inference mode, and
    writes the activations to the .npy file `path`, batch after batch (x may be larger than
    memory, e.g. a memory-mapped array), atomically: a failure leaves no partial file. Returns
    the features memory-mapped read-only (load_features).

    Shapes: x (N,) + input_shape -> float32 (N,) + F, F being the layer's per-sample output shape.

    >>> import os, tempfile
    >>> from pyconvx import layers
    >>> model = pyconvx.Sequential([layers.Flatten(), layers.Dense(6, name="body"), layers.Dense(2)],
    ...                            input_shape=(1, 4, 4), seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "features.npy")
    >>> features = extract_features(model, np.ones((5, 1, 4, 4)), "body", path, batch_size=2)
    >>> features.shape, np.load(path, mmap_mode="r").dtype
    ((5, 6), dtype('float32'))
    """
    path = _features_path(path)
    if not isinstance(model, Model):
        raise TypeError(f"extract_features: model must be a pyconvx Model or Sequential, got {type(model).__name__}")
    if not model._single_input:
        raise ValueError(f"extract_features: model {model.name!r} has {len(model.input_names)} inputs; it works on "
                         f"models with one")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"extract_features: batch_size must be a positive integer, got batch_size={batch_size!r}")
    if not hasattr(x, "shape") or not hasattr(x, "__getitem__"):
        x = np.asarray(x)
    if len(x.shape) < 1:
        raise ValueError(f"extract_features: x must be a batch (N, ...), got shape {x.shape}")
    trunk = model if model._layer_index(layer) == len(model.layers) - 1 else split(model, layer)[0]
    if not trunk._single_output:
        raise ValueError(f"extract_features: model {model.name!r} has several outputs; name a layer before them")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (int(x.shape[0]),) + tuple(trunk.output_shape)}
    with atomic_write_features(path) as stream:
        np.lib.format.write_array_header_1_0(stream, header)
        for start in range(0, x.shape[0], batch_size):
            features = trunk.predict(np.asarray(x[start:start + batch_size]), batch_size=batch_size)
            stream.write(np.ascontiguousarray(features, dtype=np.float32).data)
    # Just written and synced: the footer and size are checked, the checksum is left to later loads.
    return load_features(path, verify=False)


def load_features(path, verify=True):
    """The features extract_features wrote to `path`, memory-mapped read-only: pages are read
    from disk as they are used, so training on them needs no copy in memory.

    The file is an ordinary .npy (np.load reads it) followed by a footer holding the format
    version and a SHA-256 of the array, checked here: FileFormatError (a ValueError) naming the
    file for one that is truncated, corrupt, not written by extract_features or of a newer
    version; FileNotFoundError for a missing file. The checksum reads the whole file once;
    verify=False skips it for files too large for that (size, header and footer are still
    checked, not the values).

    >>> import os, tempfile
    >>> from pyconvx import layers
    >>> model = pyconvx.Sequential([layers.Flatten(name="flat"), layers.Dense(2)], input_shape=(1, 2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "f.npy")
    >>> _ = extract_features(model, np.zeros((3, 1, 2, 2)), "flat", path)
    >>> load_features(path).shape
    (3, 4)
    """
    return read_features(_features_path(path), verify)


def _skipped_layers(model, skip):
    """The names of the layers `skip` designates: one name or index, or a list, tuple or set of them."""
    return model._layer_names(skip if isinstance(skip, (list, tuple, set)) else [skip])


def load_pretrained(model, source, skip=()):
    """Copies pretrained weights into `model`, except those of the layers in `skip` (names or
    indices; typically the new head), which keep theirs.

    source is a pyconvx weights file (Model.save_weights), or a torchvision-style state dict: a
    mapping of torch keys ("features.0.weight") to tensors or arrays, or an .npz file of one, read
    by Model.load_torch_state_dict's rules. Every weight of the other layers must be in the
    source with its shape, and every entry of the source must belong to one; ValueError names
    the first that does not, before anything is written.

    >>> from pyconvx import layers
    >>> model = pyconvx.Sequential([layers.Dense(4, name="fc1"), layers.Dense(2, name="fc2")], input_shape=(3,))
    >>> state = {"fc1.weight": np.ones((4, 3)), "fc1.bias": np.zeros(4), "fc2.weight": np.ones((9, 4))}
    >>> load_pretrained(model, state, skip=["fc2"])
    >>> float(model.get_layer("fc1").params["kernel"].sum())
    12.0
    """
    if not isinstance(model, Model):
        raise TypeError(f"load_pretrained: model must be a pyconvx Model or Sequential, got {type(model).__name__}")
    model._require_built("load_pretrained")
    skipped = _skipped_layers(model, skip)
    if isinstance(source, (str, os.PathLike)):
        if is_weights_file(source):
            model.load_weights(source, skip=sorted(skipped))
            return
        state = read_arrays(source)
    elif hasattr(source, "items"):
        state = source
    else:
        raise TypeError(f"load_pretrained: source must be a weights file path or a state dict mapping, got "
                        f"{type(source).__name__}")
    kept = {key: value for key, value in state.items() if not any(key.startswith(name + ".") for name in skipped)}
    load_torch_state_dict([layer for layer in model.layers if layer.name not in skipped], kept, model.name)


def from_pretrained(build, source, num_classes, freeze_up_to=None, seed=None, **build_kwargs):
    """The model `build(num_classes=num_classes, seed=seed, **build_kwargs)` (e.g.
    pyconvx.models.lenet5) with the pretrained weights of `source` (see load_pretrained) in every
    layer but its last, the classifier head, which is new; then frozen up to layer
    `freeze_up_to` (a name or index): the layer before the head for little data, an earlier one
    for more, None to train everything from the pretrained start.

    >>> import os, tempfile
    >>> from pyconvx import models
    >>> path = os.path.join(tempfile.mkdtemp(), "lenet5.npz")
    >>> models.lenet5(num_classes=10, seed=0).save_weights(path)
    >>> model = from_pretrained(models.lenet5, path, num_classes=3, freeze_up_to="f6")
    >>> model.output_shape, [layer.name for layer in model.layers if layer.trainable]
    ((3,), ['output'])
    """
    if not callable(build):
        raise TypeError(f"from_pretrained: build must be a function returning a model, got {build!r}")
    model = build(num_classes=num_classes, seed=seed, **build_kwargs)
    _single_output(model, "from_pretrained")
    head = model._graph.outputs[0].layer
    load_pretrained(model, source, skip=[head.name])
    if freeze_up_to is not None:
        model.freeze(up_to=freeze_up_to)
    return model


def shrink_perturb(model, fresh, shrink=0.5, skip=()):
    """Moves `model`'s weights part of the way back to a fresh start, in place: every weight w of
    its layers but those in `skip` (names or indices) becomes shrink * w + (1 - shrink) * w_fresh,
    w_fresh being the same weight in `fresh`, a model of the same architecture as initialised
    (the builder's, with any seed). shrink=1 keeps the pretrained weights, shrink=0 gives the
    fresh network. Returns `model`.

    This is the shrink-and-perturb of Ash and Adams ("On warm-starting neural network training",
    2020), with a fresh initialisation as the perturbation: smaller pretrained weights leave tanh
    and sigmoid units out of saturation, so fine-tuning can still reshape features learned for
    another task, and the fresh part brings back features the pretraining had no use for.

    >>> from pyconvx import layers
    >>> build = lambda seed: pyconvx.Sequential([layers.Dense(2, name="fc")], input_shape=(3,), seed=seed)
    >>> pretrained, fresh = build(0), build(1)
    >>> expected = 0.5 * pretrained.get_layer("fc").params["kernel"] + 0.5 * fresh.get_layer("fc").params["kernel"]
    >>> bool(np.allclose(shrink_perturb(pretrained, fresh).get_layer("fc").params["kernel"], expected))
    True
    """
    for which, value in (("model", model), ("fresh", fresh)):
        if not isinstance(value, Model):
            raise TypeError(f"shrink_perturb: {which} must be a pyconvx Model or Sequential, got "
                            f"{type(value).__name__}")
        value._require_built("shrink_perturb")
    if isinstance(shrink, bool) or not isinstance(shrink, numbers.Real) or not 0 <= shrink <= 1:
        raise ValueError(f"shrink_perturb: shrink must be a number in [0, 1], got shrink={shrink!r}")
    skipped = _skipped_layers(model, skip)
    if [layer.name for layer in model.layers] != [layer.name for layer in fresh.layers]:
        raise ValueError(f"shrink_perturb: fresh has layers {[layer.name for layer in fresh.layers]}, model has "
                         f"{[layer.name for layer in model.layers]}; they must have the same architecture")
    pairs = [(layer, other) for layer, other in zip(model.layers, fresh.layers) if layer.name not in skipped]
    for layer, other in pairs:  # every shape checked before anything is written
        for key, value in layer.params.items():
            if key not in other.params or other.params[key].shape != value.shape:
                found = other.params[key].shape if key in other.params else "nothing"
                raise ValueError(f"shrink_perturb: weight {layer.name}.{key} is {value.shape} in model but "
                                 f"{found} in fresh; they must have the same architecture")
    for layer, other in pairs:
        for key, value in layer.params.items():
            value = writable(value)
            value *= value.dtype.type(shrink)
            value += value.dtype.type(1 - shrink) * other.params[key]
    return model
