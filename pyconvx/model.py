"""Model and Sequential: networks of layers trained the Keras way (compile, fit, evaluate, predict).

A `Model` runs the graph between its inputs and outputs (pyconvx.Input and layers called on
symbolic tensors); `Sequential` is a Model whose graph is a chain, built from its list of layers.

>>> import numpy as np, pyconvx
>>> from pyconvx import layers
>>> model = pyconvx.Sequential([layers.Conv2D(4, 3, activation="relu"), layers.Flatten(), layers.Dense(2)],
...                            input_shape=(1, 6, 6), seed=0)
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> history = model.fit(np.ones((8, 1, 6, 6)), np.zeros(8, np.int64), epochs=2, verbose=0, seed=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""
import numbers

import numpy as np
from tqdm import tqdm

from . import engine, losses, optimizers
from . import metrics as metrics_module
from ._summary import format_summary
from .callbacks import Callback, History
from .layers.base import Layer, check_weight, writable
from .layers.graph import Graph, Input, SymbolicTensor, assign_unique_names, sample_shape
from .torch_weights import load_torch_state_dict
from .weights_file import read_weights, write_weights

__all__ = ["Model", "Sequential", "Input"]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    return int(value)


def _as_input(x):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be a real numeric array, got dtype {x.dtype}")
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Model:
    """A network from its input tensors to its output tensors, trained with compile and fit.

    inputs and outputs are a symbolic tensor or a list of them: pyconvx.Input(shape) and what
    calling layers on tensors returned (a merge layer such as Concatenate or Add takes a list).
    With one input, x is an array (N,) + shape; with several, a list of arrays (or a dict by
    input name). Likewise predict returns an array for one output and a list for several, and y
    is an array or a list (or a dict by output name, the name of the layer making it). The
    layers are built at once, with initial weights drawn from `seed`; auto-named layers get
    names unique within the model (conv2d, conv2d_1, ...), in graph order.

    >>> from pyconvx import layers
    >>> x = Input((3, 8, 8))
    >>> a = layers.Conv2D(4, 1)(x)
    >>> b = layers.Conv2D(4, 3, padding="same")(x)
    >>> y = layers.Dense(2)(layers.GlobalAveragePooling2D()(layers.Concatenate()([a, b])))
    >>> model = Model(x, y, seed=0)
    >>> model.predict(np.ones((5, 3, 8, 8))).shape
    (5, 2)
    >>> [layer.name for layer in model.layers]
    ['conv2d', 'conv2d_1', 'concatenate', 'global_average_pooling2d', 'dense']
    """

    def __init__(self, inputs, outputs, name=None, seed=None):
        self._setup("model" if name is None else str(name), seed)
        self._single_input = isinstance(inputs, SymbolicTensor)
        self._single_output = isinstance(outputs, SymbolicTensor)
        self._set_graph(Graph(_as_list(inputs), _as_list(outputs), self.name))
        self.layers = self._graph.layers
        self._graph.build(self._init_rng)
        self._record_shapes()

    def _setup(self, name, seed):
        self.name = name
        self._graph = None
        self.input_shape = self.output_shape = None
        self.built = False
        self.optimizer = self.loss = None
        self._losses, self._loss_weights, self._metrics = [], [], []
        self.stop_training = False
        self.history = None
        self._init_rng = np.random.default_rng(seed)
        self._plans = None

    def _set_graph(self, graph):
        assign_unique_names(graph.layers, self.name)
        self._graph = graph
        self._plans = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_plans"] = None  # a copy builds plans of its own, from its own weights
        return state

    def _record_shapes(self):
        inputs = [tuple(t.shape) for t in self._graph.inputs]
        outputs = [tuple(t.shape) for t in self._graph.outputs]
        self.input_shape = inputs[0] if self._single_input else inputs
        self.output_shape = outputs[0] if self._single_output else outputs
        self.built = True
        self._plans = None

    @property
    def input_names(self):
        return [tensor.name for tensor in self._graph.inputs] if self._graph else ["input"]

    @property
    def output_names(self):
        """The names of the outputs: those of the layers that make them."""
        if self._graph is None:  # a Sequential waiting for its first batch
            return [self.layers[-1].name] if self.layers else ["input"]
        return [tensor.name for tensor in self._graph.outputs]

    def _require_built(self, what):
        if not self.built:
            raise RuntimeError(f"{self.name}: {what} needs a built model: pass input_shape=(C, H, W) to Sequential, "
                               f"call build(input_shape), or run it on data first")

    def _ensure_built(self, xs):
        """Builds a model that waits for its first batch (Sequential without input_shape)."""

    def get_layer(self, name):
        """The layer called `name`, or the layer at index `name` when it is an int."""
        return self.layers[self._layer_index(name)]

    def _layer_index(self, key):
        if isinstance(key, bool) or not isinstance(key, (numbers.Integral, str)):
            raise TypeError(f"{self.name}: a layer is named by its name or index, got {key!r}")
        if isinstance(key, str):
            names = [layer.name for layer in self.layers]
            if key not in names:
                raise ValueError(f"{self.name}: no layer named {key!r} (layers: {names})")
            return names.index(key)
        if not -len(self.layers) <= key < len(self.layers):
            raise ValueError(f"{self.name}: layer index {key} is out of range for {len(self.layers)} layers")
        return int(key) % len(self.layers)

    def _layer_names(self, keys):
        """The set of names of the layers `keys` (names or indices) designate."""
        return {self.layers[self._layer_index(key)].name for key in keys}

    # ----- data -----

    def _named_list(self, value, names, what, data=False):
        """value as a list with one entry per name: a list or tuple of that length or a dict
        keyed by the names, or value itself when there is one name and it is neither (data=True:
        not a dict, so that one input's x may be a nested list)."""
        if len(names) == 1 and not isinstance(value, dict if data else (list, tuple, dict)):
            return [value]
        if isinstance(value, dict):
            unknown = [key for key in value if key not in names]
            missing = [name for name in names if name not in value]
            if unknown or missing:
                problem = f"has unknown key {unknown[0]!r}" if unknown else f"misses {missing[0]!r}"
                raise ValueError(f"{self.name}: {what} {problem}; expected the keys {names}")
            return [value[name] for name in names]
        if not isinstance(value, (list, tuple)) or len(value) != len(names):
            got = f"{len(value)} entries" if isinstance(value, (list, tuple)) else type(value).__name__
            raise ValueError(f"{self.name}: {what} needs one entry per {names} (a list or a dict), got {got}")
        return list(value)

    def _inputs(self, x):
        return [_as_input(each) for each in self._named_list(x, self.input_names, "x", data=True)]

    def _check_data(self, x, y, what):
        xs = self._inputs(x)
        ys = [np.asarray(each) for each in self._named_list(y, self.output_names, "y", data=True)]
        counts = [len(each) for each in xs + ys]
        if len(set(counts)) > 1:
            if len(counts) == 2:
                raise ValueError(f"{what}: x and y must hold the same number of samples, got {counts[0]} and "
                                 f"{counts[1]}")
            raise ValueError(f"{what}: every input and target must hold the same number of samples, got {counts}")
        if counts[0] == 0:  # a loss averaged over no samples would read as a perfect 0
            raise ValueError(f"{what}: x and y hold no samples")
        return xs, ys

    # ----- passes -----

    def forward(self, x, training=False):
        """The model's output (a list for several outputs) for a batch x of shape (N,) +
        input_shape (a list of batches for several inputs)."""
        xs = self._inputs(x)
        self._ensure_built(xs)
        outputs = self._graph.forward(xs, training)
        return outputs[0] if self._single_output else outputs

    __call__ = forward

    def backward(self, grad, input_gradients=False):
        """Back-propagates the gradients of the loss with respect to the outputs (an array, or a
        list for several outputs; None for an output without one) through the graph, filling
        each layer's grads. With input_gradients=True it also returns the gradient with respect
        to the input (a list for several; saliency maps, adversarial examples), which training
        does not need and so skips by default (None then)."""
        self._require_built("backward")
        grads = self._named_list(grad, self.output_names, "backward's grad", data=True)
        self._graph.input_grads_needed = bool(input_gradients)
        try:
            result = self._graph.backward(grads)
        finally:
            self._graph.input_grads_needed = False
        return result[0] if self._single_input else result

    # ----- training -----

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None):
        """Chooses the optimizer (an Optimizer or "sgd", "adam", "rmsprop"), the loss (a name in
        pyconvx.losses.LOSSES or a callable (y_true, y_pred) -> (loss, grad)) and the metrics
        (e.g. ["accuracy"]) that fit and evaluate report.

        With several outputs, loss is one loss for all or a list or dict (by output name) with one
        per output; loss_weights (a list or dict, default all 1) weigh them in the total "loss",
        and the figures also hold "<output>_loss" and "<output>_<metric>" for each output.
        metrics is a list for every output or a dict (by output name) of lists.
        """
        if loss is None:
            raise ValueError(f"{self.name}: compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        names = self.output_names
        self.optimizer = optimizers.get(optimizer)
        self.optimizer.bind(self)
        self._losses = [losses.get(each) for each in
                        (self._named_list(loss, names, "loss") if isinstance(loss, (list, tuple, dict))
                         else [loss] * len(names))]
        weights = [1.0] * len(names) if loss_weights is None else self._named_list(loss_weights, names,
                                                                                    "loss_weights")
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight):
                raise ValueError(f"{self.name}: loss_weights must be finite numbers, got {loss_weights!r}")
        self._loss_weights = [float(weight) for weight in weights]
        self.loss = self._losses[0] if len(names) == 1 else self._losses
        prefixes = [""] if len(names) == 1 else [f"{name}_" for name in names]
        if isinstance(metrics, dict):
            per_output = [_as_list(each) for each in self._named_list(
                {name: metrics.get(name, []) for name in names} if set(metrics) <= set(names) else metrics,
                names, "metrics")]
        else:
            per_output = [list(metrics or [])] * len(names)
        self._metrics = []
        for index, (prefix, output_loss, wanted) in enumerate(zip(prefixes, self._losses, per_output)):
            for metric in wanted:
                metric_name, function = metrics_module.get(metric, output_loss)
                self._metrics.append((prefix + metric_name, index, function))

    def _require_compiled(self, what):
        if not self._losses:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before {what}")

    def _figure_names(self):
        parts = [f"{name}_loss" for name in self.output_names] if len(self._losses) > 1 else []
        return ["loss"] + parts + [name for name, _, _ in self._metrics]

    def _losses_and_grads(self, ys, outputs):
        """The figures of one batch (total loss, per-output losses, metrics) and the gradients
        of the total loss with respect to the outputs."""
        total, parts, grads = 0.0, [], []
        for loss, weight, y, output in zip(self._losses, self._loss_weights, ys, outputs):
            value, grad = loss(y, output)
            total += weight * value
            parts.append(value)
            grads.append(grad if weight == 1.0 else grad * grad.dtype.type(weight))
        figures = [total] + (parts if len(parts) > 1 else [])
        figures += [metric(ys[index], outputs[index]) for _, index, metric in self._metrics]
        return figures, grads

    def fit(self, x, y=None, batch_size=32, epochs=1, validation_data=None, callbacks=None, verbose=1, seed=None,
            shuffle=True):
        """Trains for `epochs` passes over (x, y) in shuffled mini-batches; returns a History whose
        history["loss"], ["accuracy"], ["val_loss"], ... hold one value per epoch.

        Shapes: x (N,) + input_shape (a list of such arrays for several inputs); y as the loss
        wants it (labels (N,) for the sparse cross-entropy, one-hot (N, K) for the categorical
        one; a list or dict for several outputs). validation_data is (x_val, y_val), evaluated
        after each epoch. seed fixes the shuffling and the dropout masks. verbose=0 hides the
        per-epoch progress bar.

        x may instead be a loader, such as pyconvx.data.DataLoader: an object with len() (its
        batches per epoch) and a batch_size whose every iteration yields one epoch of (x_batch,
        y_batch) pairs; y is None then, and batch_size and shuffle are the loader's business.
        """
        self._require_compiled("fit")
        loader = x if _is_loader(x) else None
        if loader is not None:
            if y is not None:
                raise ValueError("fit: y must be None when x is a loader, which yields the targets itself")
        else:
            if y is None:
                raise ValueError("fit: y is required unless x is a loader (e.g. pyconvx.data.DataLoader)")
            xs, ys = self._check_data(x, y, "fit")
        batch_size, epochs = _positive_int(batch_size, "batch_size"), _positive_int(epochs, "epochs")
        if loader is not None:  # its batch size also serves the validation
            batch_size = _positive_int(loader.batch_size, "the loader's batch_size")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            self._check_data(*validation_data, "fit (validation_data)")
        if loader is None:
            self._ensure_built(xs)
        streams = np.random.SeedSequence(seed).spawn(len(self.layers) + 1)
        shuffle_rng = np.random.default_rng(streams[0])
        for layer, stream in zip(self.layers, streams[1:]):
            layer.reseed(np.random.default_rng(stream))

        history = History()
        # History last: it records the figures the other callbacks added (e.g. learning_rate).
        callbacks = list(callbacks or []) + [history]
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"fit: callbacks must be Callback instances, got {callback!r}")
            callback.set_model(self)
        self.stop_training = False
        self.history = history
        for callback in callbacks:
            callback.on_train_begin()
        for epoch in range(epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            batches = (self._loader_batches(loader) if loader is not None else
                       _array_batches(xs, ys, batch_size, shuffle_rng if shuffle else None))
            logs = self._train_epoch(batches, len(loader) if loader is not None else -(-len(xs[0]) // batch_size),
                                     batch_size, f"Epoch {epoch + 1}/{epochs}", verbose, validation_data)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _loader_batches(self, loader):
        """One epoch of the loader's batches as (inputs, targets) lists, checked as fit's arrays are.
        Closed on the way out, so that an epoch left early (an exception) stops its workers."""
        epoch = iter(loader)
        try:
            for x_batch, y_batch in epoch:
                xs, ys = self._check_data(x_batch, y_batch, "fit (a batch from the loader)")
                self._ensure_built(xs)
                yield xs, ys
        finally:
            getattr(epoch, "close", lambda: None)()

    def _train_epoch(self, batches, batch_count, batch_size, description, verbose, validation_data):
        totals = _RunningMeans(self._figure_names())
        with tqdm(total=batch_count, desc=description, unit="batch", disable=not verbose) as bar:
            for x_batch, y_batch in batches:
                outputs = self._graph.forward(x_batch, True)
                figures, grads = self._losses_and_grads(y_batch, outputs)
                self._graph.backward(grads)
                self.optimizer.step(self.layers)
                totals.add(len(x_batch[0]), figures)
                bar.update(1)
                bar.set_postfix(totals.means(), refresh=False)
            logs = totals.means()
            if validation_data is not None:
                validation = self.evaluate(*validation_data, batch_size=batch_size, return_dict=True)
                logs.update({f"val_{key}": value for key, value in validation.items()})
            bar.set_postfix(logs)
        return logs

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """The loss and metrics on (x, y) in inference mode: a float when there is only the loss,
        else [loss, ...] in the order of the figures' names, or a dict with return_dict.
        verbose=1 shows a progress bar."""
        self._require_compiled("evaluate")
        xs, ys = self._check_data(x, y, "evaluate")
        self._ensure_built(xs)
        totals = _RunningMeans(self._figure_names())
        for start, outputs in self._inference_batches(xs, batch_size, verbose, "evaluate"):
            figures, _ = self._losses_and_grads([y[start:start + len(outputs[0])] for y in ys], outputs)
            totals.add(len(outputs[0]), figures)
        result = totals.means()
        if return_dict:
            return result
        return result["loss"] if len(result) == 1 else list(result.values())

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for x (N,) + input_shape, in inference mode, batch by batch through
        the inference plan (pyconvx.engine); verbose=1 shows a progress bar.

        Shapes: -> (N,) + output_shape, float32 (a list of such arrays for several outputs).
        """
        xs = self._inputs(x)
        self._ensure_built(xs)
        self._require_built("predict")
        count = len(xs[0])
        plan = self._plan_or_none(min(_positive_int(batch_size, "batch_size"), max(count, 1)))
        if plan is not None:
            xs = [np.ascontiguousarray(each) for each in xs]
            self._check_inputs(xs)
            outputs = [np.empty((count,) + tuple(t.shape), np.float32) for t in self._graph.outputs]
            for start in _batch_starts(count, batch_size, verbose, "predict"):
                plan.run(xs, outputs, start, min(count, start + batch_size))
        else:
            batches = [outputs for _, outputs in self._inference_batches(xs, batch_size, verbose, "predict")]
            outputs = ([np.concatenate(parts) for parts in zip(*batches)] if batches else
                       [np.zeros((0,) + tuple(t.shape), np.float32) for t in self._graph.outputs])
        return outputs[0] if self._single_output else outputs

    def inference_plan(self, batch_size=32):
        """The model compiled for batches of up to `batch_size` samples (a pyconvx.engine
        .InferencePlan), as predict and evaluate run it: prepared once, then each batch runs in
        one call into C++. Raises ValueError when a layer has no step in the plan (a custom
        layer without _to_network); predict then runs layer by layer.

        >>> from pyconvx import layers
        >>> model = Sequential([layers.Flatten(), layers.Dense(3)], input_shape=(2, 4, 4), seed=0)
        >>> model.inference_plan(batch_size=4)(np.ones((6, 2, 4, 4))).shape
        (6, 3)
        """
        self._require_built("inference_plan")
        try:
            return self._plan_cache().plan(_positive_int(batch_size, "batch_size"))
        except engine.NotSupported as error:
            raise ValueError(f"{self.name}: {error}") from None

    def _plan_cache(self):
        if self._plans is None:
            def describe(net):
                inputs = [net.input(tensor.shape) for tensor in self._graph.inputs]
                for tensor in self._graph.to_network(net, inputs):
                    net.output(tensor)

            self._plans = engine.PlanCache(describe, self._weight_slots, self._single_input, self._single_output)
        return self._plans

    def _plan_or_none(self, batch_size):
        """The inference plan for batches of `batch_size`, or None when a layer has none."""
        try:
            return self._plan_cache().plan(batch_size)
        except engine.NotSupported:
            return None

    def _check_inputs(self, xs):
        """ValueError naming the first layer an input feeds (as running it would) when a batch
        does not have the model's per-sample shape."""
        for tensor, x in zip(self._graph.inputs, xs):
            if x.shape[1:] != tuple(tensor.shape):
                reader = next((node.layer for node in self._graph.nodes if tensor in node.inputs), None)
                message = f"expected input shape {(None,) + tuple(tensor.shape)}, got {x.shape}"
                raise reader.shape_error(message) if reader else ValueError(f"{self.name}: {message}")

    def _inference_batches(self, xs, batch_size, verbose, description):
        """(first index, the outputs) of each batch of xs in inference mode: through the inference
        plan, or layer by layer where a layer has no step in it."""
        count = len(xs[0])
        plan = self._plan_or_none(min(_positive_int(batch_size, "batch_size"), max(count, 1)))
        if plan is not None:
            xs = [np.ascontiguousarray(each) for each in xs]
            self._check_inputs(xs)
        for start in _batch_starts(count, batch_size, verbose, description):
            batch = [x[start:start + batch_size] for x in xs]
            if plan is None:
                yield start, self._graph.forward(batch, False)
                continue
            outputs = [np.empty((len(batch[0]),) + tuple(t.shape), np.float32) for t in self._graph.outputs]
            plan.run(batch, outputs, 0, len(batch[0]))
            yield start, outputs

    def _weight_slots(self):
        """(mapping, key, array) for each weight array of every layer, sub-layers of blocks
        included: what an inference plan reads."""
        slots, stack = [], list(self.layers)
        while stack:
            layer = stack.pop()
            if getattr(layer, "sublayers", None):
                stack.extend(layer.sublayers)
                continue
            for mapping in (layer.params, layer.state):
                slots.extend((mapping, key, array) for key, array in mapping.items())
        return slots

    # ----- freezing -----

    def freeze(self, up_to):
        """Makes the layer `up_to` (a name or an index into `layers`) and every layer before it
        non-trainable: fit leaves their weights alone (batch normalisation then uses its running
        statistics), summary counts them as non-trainable, and backward stops before them when
        no trainable layer comes earlier. In a graph, "before it" means upstream of it: the
        layers its input is computed from, so a parallel branch it does not depend on stays
        trainable even when it comes earlier in `layers`. Freezing adds to what is frozen; to
        freeze fewer layers than before, unfreeze() first.

        >>> from pyconvx import layers
        >>> model = Sequential([layers.Dense(4), layers.Dense(2, name="head")], input_shape=(3,))
        >>> model.freeze(up_to=0)
        >>> [layer.trainable for layer in model.layers]
        [False, True]
        """
        index = self._layer_index(up_to)
        if self._graph is None:  # a Sequential waiting for its first batch: a chain
            frozen = self.layers[:index + 1]
        else:
            frozen = self._graph.upstream_layers(self.layers[index])
        for layer in frozen:
            layer.trainable = False
        if self.built:
            self._graph.plan_backward()

    def unfreeze(self):
        """Makes every layer trainable again."""
        for layer in self.layers:
            layer.trainable = True
        if self.built:
            self._graph.plan_backward()

    # ----- weights -----

    def count_params(self, include_state=True):
        """Number of scalars in all layers' parameters and saved state (batch-norm running
        statistics, which Keras counts as non-trainable parameters); include_state=False counts
        the parameters only, as torch's sum of p.numel() over model.parameters() does."""
        if include_state:
            return sum(layer.count_params() for layer in self.layers)
        return sum(int(array.size) for layer in self.layers for array in layer.params.values())

    def summary(self, print_fn=print):
        """Prints a table of the layers (name and type, output shape, parameter count, and for
        convolutions the parameters a dense layer with the same input and output sizes would
        need; for a graph, the layers each one takes its input from), then the total, trainable
        and non-trainable counts."""
        self._require_built("summary")
        print_fn(format_summary(self))

    def _connections(self):
        """For each layer, the names of the tensors it is called on (shown by summary)."""
        return {id(node.layer): [parent.name for parent in node.inputs] for node in self._graph.nodes}
    def _weight_entries(self):
        return [(f"{layer.name}/{key}", array)
                for layer in self.layers for key, array in zip(layer.weight_names(), layer._weight_arrays())]

    def get_weights(self):
        """Copies of every layer's arrays, layer after layer, each in its weight_names() order."""
        self._require_built("get_weights")
        return [array.copy() for _, array in self._weight_entries()]

    def set_weights(self, weights):
        """Sets every layer's arrays from a list in get_weights() order; all shapes are checked
        before anything is written."""
        self._require_built("set_weights")
        entries, weights = self._weight_entries(), list(weights)
        if len(weights) != len(entries):
            raise ValueError(f"{self.name}: set_weights expected {len(entries)} arrays, got {len(weights)}")
        for (key, target), value in zip(entries, weights):
            check_weight(value, target, key, self.name)
        for (_, target), value in zip(entries, weights):
            np.copyto(writable(target), value, casting="same_kind")

    def save_weights(self, path):
        """Writes every layer's weights to an .npz file at `path` (used as given), atomically."""
        self._require_built("save_weights")
        write_weights(path, dict(self._weight_entries()))

    def load_weights(self, path, skip=()):
        """Reads weights written by save_weights. Raises ValueError naming the first weight whose
        layer name or shape does not match the model (nothing is changed then), and
        FileFormatError (a ValueError) naming the file for a truncated, corrupt (checksum
        mismatch), foreign or newer-version one (see pyconvx.weights_file). skip lists layers (names or indices) whose weights are neither
        read nor required and keep their values, such as a new classifier head.

        >>> import os, tempfile
        >>> from pyconvx import layers
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> Sequential([layers.Dense(4, name="a"), layers.Dense(3, name="head")], input_shape=(2,)).save_weights(path)
        >>> model = Sequential([layers.Dense(4, name="a"), layers.Dense(5, name="head")], input_shape=(2,))
        >>> model.load_weights(path, skip=["head"])
        """
        self._require_built("load_weights")
        skipped = self._layer_names(_as_list(skip))
        stored = {key: value for key, value in read_weights(path).items() if key.split("/")[0] not in skipped}
        entries = [(key, target) for key, target in self._weight_entries() if key.split("/")[0] not in skipped]
        for key, target in entries:
            if key not in stored:
                layer = key.split("/")[0]
                in_file = sorted({k.split("/")[0] for k in stored})
                raise ValueError(f"{path}: no weight {key!r} for layer {layer!r} in the file (its layers: {in_file})")
            if stored[key].shape != target.shape:
                raise ValueError(f"{path}: weight {key!r} has shape {stored[key].shape} in the file but "
                                 f"{target.shape} in the model")
            check_weight(stored[key], target, key, path)
        extra = [key for key in stored if key not in dict(entries)]
        if extra:
            raise ValueError(f"{path}: the file has weight {extra[0]!r}, which the model does not have")
        for key, target in entries:
            np.copyto(writable(target), stored[key], casting="same_kind")

    def load_torch_state_dict(self, state_dict, strict=True):
        """Copies the weights of a torch module's state_dict() (torch tensors or NumPy arrays)
        into the model, whose layer names follow the module's attribute paths, as those of
        pyconvx.models do: "features.0" takes "features.0.weight" and "features.0.bias", a
        block's sub-layer "layer1.0" / "conv1" takes "layer1.0.conv1.weight". Convolution
        kernels map as they are, Dense kernels transposed (torch's Linear stores (out, in)),
        batch norm's weight, bias, running_mean and running_var to gamma, beta and the moving
        statistics; "num_batches_tracked" entries are ignored. Raises ValueError naming the first
        missing key, shape mismatch or unexpected key; nothing is written then. strict=False
        skips missing and unexpected keys (a new head: drop its keys from the state dict) and
        returns them as (missing, unexpected), as torch's load_state_dict does.

        >>> from pyconvx import layers
        >>> model = Sequential([layers.Dense(2, name="fc")], input_shape=(3,))
        >>> model.load_torch_state_dict({"fc.weight": np.ones((2, 3)), "fc.bias": np.zeros(2)})
        >>> model.layers[0].params["kernel"].shape
        (3, 2)
        """
        self._require_built("load_torch_state_dict")
        missing, unexpected = load_torch_state_dict(self.layers, state_dict, self.name, strict)
        return None if strict else (missing, unexpected)


class Sequential(Model):
    """Layers applied one after the other: a Model whose graph is a chain.

    input_shape is the per-sample shape, (C, H, W) for images or (features,); with it the model
    is built at once (so summary() works before any data), otherwise on the first batch. seed
    makes the initial weights reproducible. Layers created without a name get one unique within
    the model from their type, by position: conv2d, conv2d_1, ..., dense, so that two models of
    the same architecture share weight files.

    >>> from pyconvx import layers
    >>> Sequential([layers.Flatten(), layers.Dense(3)], input_shape=(2, 4, 4)).output_shape
    (3,)
    """

    def __init__(self, layers=None, input_shape=None, name=None, seed=None):
        self._setup("sequential" if name is None else str(name), seed)
        self._single_input = self._single_output = True
        self.layers = []
        for layer in layers or []:
            self._append(layer)
        assign_unique_names(self.layers, self.name)
        if input_shape is not None:
            self.build(input_shape)

    def _append(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: expected a Layer, got {layer!r}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{self.name}: layer {layer.name!r} is already in the model")
        self.layers.append(layer)

    def add(self, layer):
        """Appends a layer (built at once when the model is)."""
        self._append(layer)
        try:
            assign_unique_names(self.layers, self.name)
            if self.built:
                self._chain(self.input_shape)
        except Exception:
            self.layers.pop()
            raise

    def build(self, input_shape):
        """Builds every layer for per-sample inputs of input_shape; returns the output shape."""
        self._chain(sample_shape(input_shape, f"{self.name}: input_shape"))
        return self.output_shape

    def _chain(self, shape):
        tensor = first = Input(shape, name="input")
        for layer in self.layers:
            tensor = layer(tensor)
        graph = Graph([first], [tensor], self.name)
        graph.build(self._init_rng)
        self._graph = graph
        self._record_shapes()

    def _ensure_built(self, xs):
        if not self.built:
            if xs[0].ndim < 2:
                raise ValueError(f"{self.name}: expected a batch (N, ...) of inputs, got shape {xs[0].shape}")
            self.build(xs[0].shape[1:])

    def _connections(self):
        return None  # a chain: each layer takes the one above


def _is_loader(x):
    """Whether fit's x is a loader of batches rather than data (arrays, lists or dicts of them)."""
    return (not isinstance(x, (np.ndarray, list, tuple, dict)) and hasattr(x, "__iter__") and hasattr(x, "__len__")
            and hasattr(x, "batch_size"))


def _array_batches(xs, ys, batch_size, shuffle_rng):
    """One epoch of (inputs, targets) batches of the arrays, shuffled by shuffle_rng unless None."""
    count = len(xs[0])
    order = shuffle_rng.permutation(count) if shuffle_rng is not None else np.arange(count)
    for start in range(0, count, batch_size):
        batch = order[start:start + batch_size]
        yield [x[batch] for x in xs], [y[batch] for y in ys]


def _batch_starts(count, batch_size, verbose, description):
    """The first index of each batch, behind a progress bar when verbose."""
    batch_size = _positive_int(batch_size, "batch_size")
    starts = range(0, count, batch_size)
    return tqdm(starts, desc=description, unit="batch") if verbose else starts


class _RunningMeans:
    """Sample-weighted means of per-batch figures (each batch figure is a mean over its samples)."""

    def __init__(self, names):
        self.names, self.sums, self.count = names, [0.0] * len(names), 0

    def add(self, count, values):
        self.count += count
        self.sums = [total + count * float(value) for total, value in zip(self.sums, values)]

    def means(self):
        return {name: total / max(self.count, 1) for name, total in zip(self.names, self.sums)}
