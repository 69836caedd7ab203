"""Sequential: a stack of layers trained the Keras way (compile, fit, evaluate, predict).

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

from . import losses, optimizers
from . import metrics as metrics_module
from ._summary import format_summary
from .callbacks import Callback, History
from .layers.base import Layer, snake_case
from .weights_file import read_weights, write_weights

__all__ = ["Sequential"]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    return int(value)


def _as_input(x):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x must be a real numeric array, got dtype {x.dtype}")
    return x if x.dtype == np.float32 else x.astype(np.float32)


class Sequential:
    """Layers applied one after the other.

    input_shape is the per-sample shape, (C, H, W) for images or (features,); with it the model
    is built at once (so summary() works before any data), otherwise on the first batch. seed
    makes the initial weights reproducible. Layers created without a name get one unique within
    the model from their type, by position: conv2d, conv2d_1, ..., dense, so that two models of
    the same architecture share weight files.
    """

    def __init__(self, layers=None, input_shape=None, name=None, seed=None):
        self.name = "sequential" if name is None else str(name)
        self.layers = []
        self.input_shape = self.output_shape = None
        self.built = False
        self.optimizer = self.loss = None
        self._metrics = []
        self.stop_training = False
        self.history = None
        self._init_rng = np.random.default_rng(seed)
        for layer in layers or []:
            self._append(layer)
        self._assign_names()
        if input_shape is not None:
            self.build(input_shape)

    # ----- structure -----

    def _append(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: expected a Layer, got {layer!r}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{self.name}: layer {layer.name!r} is already in the model")
        self.layers.append(layer)
        for index, each in enumerate(self.layers):
            # The first layer's input gradient would only be thrown away.
            each.input_grad_needed = index > 0

    def _assign_names(self):
        chosen = [layer.name for layer in self.layers if not layer.auto_named]
        duplicates = sorted({name for name in chosen if chosen.count(name) > 1})
        if duplicates:
            raise ValueError(f"{self.name}: layer names must be unique, got duplicates {duplicates}")
        taken = set(chosen)
        for layer in self.layers:
            if layer.auto_named:
                base, index = snake_case(type(layer).__name__), 0
                while (base if index == 0 else f"{base}_{index}") in taken:
                    index += 1
                layer.name = base if index == 0 else f"{base}_{index}"
                taken.add(layer.name)

    def add(self, layer):
        """Appends a layer (built at once when the model is)."""
        self._append(layer)
        try:
            self._assign_names()
            if self.built:
                self.output_shape = self._build_layer(layer, self.output_shape)
        except Exception:
            self.layers.pop()
            raise

    def _build_layer(self, layer, shape):
        if not layer.built:
            return layer.build(shape, self._init_rng)
        if layer.input_shape != tuple(shape):
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) was built for input shape "
                             f"{(None,) + layer.input_shape}, but the model gives it {(None,) + tuple(shape)}")
        return layer.output_shape

    def build(self, input_shape):
        """Builds every layer for per-sample inputs of input_shape; returns the output shape."""
        try:
            shape = tuple(int(d) for d in input_shape)
        except TypeError:
            raise TypeError(f"{self.name}: input_shape must be a sequence of ints, got {input_shape!r}") from None
        if not shape or min(shape) < 1:
            raise ValueError(f"{self.name}: input_shape must be positive sizes such as (C, H, W), got {input_shape!r}")
        self.input_shape = shape
        for layer in self.layers:
            shape = self._build_layer(layer, shape)
        self.output_shape = shape
        self.built = True
        return shape

    def _require_built(self, what):
        if not self.built:
            raise RuntimeError(f"{self.name}: {what} needs a built model: pass input_shape=(C, H, W) to Sequential, "
                               f"call build(input_shape), or run it on data first")

    # ----- passes -----

    def forward(self, x, training=False):
        """The model's output for a batch x of shape (N,) + input_shape."""
        x = _as_input(x)
        if not self.built:
            if x.ndim < 2:
                raise ValueError(f"{self.name}: expected a batch (N, ...) of inputs, got shape {x.shape}")
            self.build(x.shape[1:])
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, grad):
        """Back-propagates the gradient of the loss with respect to the output through every layer,
        filling each layer's grads."""
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:
                break
        return grad

    # ----- training -----

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Chooses the optimizer (an Optimizer or "sgd", "adam", "rmsprop"), the loss (a name in
        pyconvx.losses.LOSSES or a callable (y_true, y_pred) -> (loss, grad)) and the metrics
        (e.g. ["accuracy"]) that fit and evaluate report."""
        if loss is None:
            raise ValueError(f"{self.name}: compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self._metrics = [metrics_module.get(metric, self.loss) for metric in (metrics or [])]

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before {what}")

    @staticmethod
    def _check_data(x, y, what):
        x, y = _as_input(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"{what}: x and y must hold the same number of samples, got {len(x)} and {len(y)}")
        return x, y

    def fit(self, x, y, batch_size=32, epochs=1, validation_data=None, callbacks=None, verbose=1, seed=None,
            shuffle=True):
        """Trains for `epochs` passes over (x, y) in shuffled mini-batches; returns a History whose
        history["loss"], ["accuracy"], ["val_loss"], ... hold one value per epoch.

        Shapes: x (N,) + input_shape; y as the loss wants it (labels (N,) for the sparse
        cross-entropy, one-hot (N, K) for the categorical one). validation_data is (x_val, y_val),
        evaluated after each epoch. seed fixes the shuffling and the dropout masks. verbose=0
        hides the per-epoch progress bar.
        """
        self._require_compiled("fit")
        x, y = self._check_data(x, y, "fit")
        batch_size, epochs = _positive_int(batch_size, "batch_size"), _positive_int(epochs, "epochs")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            validation_data = self._check_data(*validation_data, "fit (validation_data)")
        if not self.built:
            self.build(x.shape[1:])
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
            logs = self._train_epoch(x, y, batch_size, shuffle_rng if shuffle else None,
                                     f"Epoch {epoch + 1}/{epochs}", verbose, validation_data)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _train_epoch(self, x, y, batch_size, shuffle_rng, description, verbose, validation_data):
        order = shuffle_rng.permutation(len(x)) if shuffle_rng is not None else np.arange(len(x))
        totals = _RunningMeans(["loss"] + [name for name, _ in self._metrics])
        with tqdm(total=-(-len(x) // batch_size), desc=description, unit="batch", disable=not verbose) as bar:
            for start in range(0, len(x), batch_size):
                batch = order[start:start + batch_size]
                x_batch, y_batch = x[batch], y[batch]
                output = self.forward(x_batch, training=True)
                loss, grad = self.loss(y_batch, output)
                self.backward(grad)
                self.optimizer.step(self.layers)
                totals.add(len(batch), [loss] + [metric(y_batch, output) for _, metric in self._metrics])
                bar.update(1)
                bar.set_postfix(totals.means(), refresh=False)
            logs = totals.means()
            if validation_data is not None:
                validation = self.evaluate(*validation_data, batch_size=batch_size, return_dict=True)
                logs.update({f"val_{key}": value for key, value in validation.items()})
            bar.set_postfix(logs)
        return logs

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """The loss and metrics on (x, y) in inference mode: a float when there are no metrics,
        else [loss, metric, ...], or a dict with return_dict. verbose=1 shows a progress bar."""
        self._require_compiled("evaluate")
        x, y = self._check_data(x, y, "evaluate")
        totals = _RunningMeans(["loss"] + [name for name, _ in self._metrics])
        for start in _batch_starts(len(x), batch_size, verbose, "evaluate"):
            x_batch, y_batch = x[start:start + batch_size], y[start:start + batch_size]
            output = self.forward(x_batch, training=False)
            totals.add(len(x_batch), [self.loss(y_batch, output)[0]] +
                       [metric(y_batch, output) for _, metric in self._metrics])
        result = totals.means()
        if return_dict:
            return result
        return result["loss"] if not self._metrics else list(result.values())

    def predict(self, x, batch_size=32, verbose=0):
        """The model's outputs for x (N,) + input_shape, in inference mode, batch by batch;
        verbose=1 shows a progress bar.

        Shapes: -> (N,) + output_shape, float32.
        """
        x = _as_input(x)
        outputs = [self.forward(x[start:start + batch_size], training=False)
                   for start in _batch_starts(len(x), batch_size, verbose, "predict")]
        if not outputs:
            self._require_built("predict on an empty batch")
            return np.zeros((0,) + self.output_shape, np.float32)
        return np.concatenate(outputs)

    # ----- weights -----

    def count_params(self):
        """Number of scalars in all layers' parameters and saved state."""
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """Prints a table of the layers (name and type, output shape, parameter count, and for
        convolutions the parameters a dense layer with the same input and output sizes would
        need), then the total, trainable and non-trainable counts."""
        self._require_built("summary")
        print_fn(format_summary(self))

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
            if np.shape(value) != target.shape:
                raise ValueError(f"{self.name}: weight {key!r} has shape {target.shape}, got {np.shape(value)}")
        for (_, target), value in zip(entries, weights):
            np.copyto(target, value, casting="same_kind")

    def save_weights(self, path):
        """Writes every layer's weights to an .npz file at `path` (used as given), atomically."""
        self._require_built("save_weights")
        write_weights(path, dict(self._weight_entries()))

    def load_weights(self, path):
        """Reads weights written by save_weights. Raises ValueError naming the first weight whose
        layer name or shape does not match the model (nothing is changed then), and for a
        truncated or foreign file."""
        self._require_built("load_weights")
        stored = read_weights(path)
        entries = self._weight_entries()
        for key, target in entries:
            if key not in stored:
                layer = key.split("/")[0]
                in_file = sorted({k.split("/")[0] for k in stored})
                raise ValueError(f"{path}: no weight {key!r} for layer {layer!r} in the file (its layers: {in_file})")
            if stored[key].shape != target.shape:
                raise ValueError(f"{path}: weight {key!r} has shape {stored[key].shape} in the file but "
                                 f"{target.shape} in the model")
        extra = [key for key in stored if key not in dict(entries)]
        if extra:
            raise ValueError(f"{path}: the file has weight {extra[0]!r}, which the model does not have")
        for key, target in entries:
            np.copyto(target, stored[key], casting="same_kind")


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
