"""Symbolic tensors and the graph that runs layers wired by calling them on tensors.

`Input(shape)` starts a graph; calling a layer on a symbolic tensor (or a merge layer on a list
of them) records the call and returns the layer's symbolic output. A `Graph(inputs, outputs)`
orders the recorded calls, builds every layer for its input shape, runs them forward, and runs
them backward in reverse order, summing the gradients of a tensor that feeds several layers.
Models (pyconvx.Model, Sequential) and composite blocks are both graphs underneath.

>>> import numpy as np
>>> from pyconvx.layers import Add, Dense
>>> x = Input((4,))
>>> graph = Graph([x], [Add()([Dense(4)(x), x])])
>>> graph.build(np.random.default_rng(0))
>>> graph.forward([np.ones((2, 4), np.float32)], training=False)[0].shape
(2, 4)
"""
import itertools

from .base import snake_case

__all__ = ["SymbolicTensor", "Input", "Graph", "is_symbolic", "assign_unique_names"]

_input_names = itertools.count()


class SymbolicTensor:
    """The per-sample output of a layer call (or of an Input) before any data flows.

    `layer` made it from `inputs` (symbolic tensors); an Input has neither. `shape` is the
    per-sample shape, known for an Input and filled in when a Graph holding it is built.
    """

    def __init__(self, layer, inputs, shape=None, name=None):
        self.layer, self.inputs, self.shape, self._name = layer, list(inputs), shape, name

    @property
    def name(self):
        return self._name if self.layer is None else self.layer.name

    def __repr__(self):
        shape = "unbuilt" if self.shape is None else (None,) + tuple(self.shape)
        return f"<SymbolicTensor {self.name!r} shape={shape}>"


def Input(shape, name=None):
    """A graph's input placeholder for samples of per-sample `shape`, (C, H, W) for images.

    >>> Input((3, 32, 32), name="image")
    <SymbolicTensor 'image' shape=(None, 3, 32, 32)>
    """
    shape = sample_shape(shape, "Input: shape")
    index = next(_input_names)
    return SymbolicTensor(None, [], shape, name or ("input" if index == 0 else f"input_{index}"))


def sample_shape(value, what):
    """value as a tuple of positive ints; TypeError or ValueError starting with `what`."""
    try:
        shape = tuple(int(d) for d in value)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of ints such as (C, H, W), got {value!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"{what} must be positive sizes such as (C, H, W), got {value!r}")
    return shape


def is_symbolic(value):
    """True for a SymbolicTensor or a non-empty list or tuple of them."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(isinstance(item, SymbolicTensor) for item in value)
    return isinstance(value, SymbolicTensor)


def assign_unique_names(layers, owner):
    """Gives auto-named layers names unique among `layers` from their type, in order (conv2d,
    conv2d_1, ...), so that two models of one architecture share weight files; explicitly named
    layers keep their names, which must be unique. A name once given is the layer's own: a layer
    shared with a later model keeps it, so the first model's weight files and optimizer state
    stay valid."""
    chosen = [layer.name for layer in layers if not layer.auto_named]
    duplicates = sorted({name for name in chosen if chosen.count(name) > 1})
    if duplicates:
        raise ValueError(f"{owner}: layer names must be unique, got duplicates {duplicates}")
    taken = set(chosen)
    for layer in layers:
        if layer.auto_named:
            base, index = snake_case(type(layer).__name__), 0
            while (base if index == 0 else f"{base}_{index}") in taken:
                index += 1
            layer.name = base if index == 0 else f"{base}_{index}"
            layer.auto_named = False
            taken.add(layer.name)


class Graph:
    """The layer calls between `inputs` and `outputs` (lists of SymbolicTensors), in an order
    where every call comes after the calls that make its inputs.

    `layers` lists the layers in that order; each may be called once in a graph. `owner` names
    the model or block in error messages.
    """

    def __init__(self, inputs, outputs, owner="model"):
        self.owner = owner
        self.inputs, self.outputs = list(inputs), list(outputs)
        for tensor in self.inputs + self.outputs:
            if not isinstance(tensor, SymbolicTensor):
                raise TypeError(f"{owner}: inputs and outputs must be symbolic tensors (from Input() or a layer "
                                f"called on one), got {tensor!r}")
        for tensor in self.inputs:
            if tensor.layer is not None:
                raise ValueError(f"{owner}: inputs must come from Input(), got the output of layer "
                                 f"{tensor.layer.name!r}")
        self.nodes = self._order()
        self.layers = [node.layer for node in self.nodes]
        self.input_grads_needed = False
        self.built = False

    def _order(self):
        """Depth-first post-order from the outputs: a topological order of the reachable calls."""
        order, state = [], {}
        known_inputs = {id(tensor) for tensor in self.inputs}
        for output in self.outputs:
            stack = [(output, False)]
            while stack:
                tensor, expanded = stack.pop()
                if expanded:
                    state[id(tensor)] = "done"
                    order.append(tensor)
                    continue
                if state.get(id(tensor)) == "done":
                    continue
                if tensor.layer is None:
                    if id(tensor) not in known_inputs:
                        raise ValueError(f"{self.owner}: the outputs depend on Input {tensor.name!r}, which is not "
                                         f"among the model's inputs")
                    state[id(tensor)] = "done"
                    continue
                if state.get(id(tensor)) == "open":
                    raise ValueError(f"{self.owner}: the graph has a cycle through layer {tensor.layer.name!r}")
                state[id(tensor)] = "open"
                stack.append((tensor, True))
                stack.extend((parent, False) for parent in reversed(tensor.inputs))
        seen = {}
        for node in order:
            if id(node.layer) in seen:
                raise ValueError(f"{self.owner}: layer {node.layer.name!r} is called more than once; each layer "
                                 f"may appear once in a graph (create another layer for another call)")
            seen[id(node.layer)] = node
        return order

    def upstream_layers(self, layer):
        """`layer` and every layer whose output reaches its input, in graph order."""
        node = next((node for node in self.nodes if node.layer is layer), None)
        if node is None:
            raise ValueError(f"{self.owner}: layer {getattr(layer, 'name', layer)!r} is not in the graph")
        reached, stack = {id(node)}, [node]
        while stack:
            for parent in stack.pop().inputs:
                if parent.layer is not None and id(parent) not in reached:
                    reached.add(id(parent))
                    stack.append(parent)
        return [each.layer for each in self.nodes if id(each) in reached]

    # ----- building -----

    def build(self, rng):
        """Builds each layer for the shapes its inputs have, in order; fills every tensor's shape."""
        for node in self.nodes:
            shapes = [tuple(parent.shape) for parent in node.inputs]
            layer = node.layer
            given = shapes if layer.takes_list else shapes[0]
            if not layer.built:
                node.shape = layer.build(given, rng)
            elif layer.input_shape != (tuple(given) if not layer.takes_list else tuple(shapes)):
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) was built for input shape "
                                 f"{_batched(layer.input_shape)}, but the graph gives it {_batched(given)}")
            else:
                node.shape = layer.output_shape
        self.built = True
        self.plan_backward()

    # ----- passes -----

    def forward(self, inputs, training):
        """The outputs (a list) for a list of input batches, one per graph input, layer by layer
        (Model.predict runs the inference plan instead: pyconvx.engine)."""
        values = {id(tensor): x for tensor, x in zip(self.inputs, inputs)}
        for node in self.nodes:
            args = [values[id(parent)] for parent in node.inputs]
            values[id(node)] = node.layer.forward(args if node.layer.takes_list else args[0], training)
        return [values[id(tensor)] for tensor in self.outputs]

    def to_network(self, net, inputs):
        """Adds the graph's layers to `net` (a pyconvx.engine.NetworkBuilder) over the tensors
        `inputs`, one per graph input; returns the output tensors."""
        values = {id(tensor): x for tensor, x in zip(self.inputs, inputs)}
        for node in self.nodes:
            values[id(node)] = node.layer._to_network(net, [values[id(parent)] for parent in node.inputs])
        return [values[id(tensor)] for tensor in self.outputs]

    def plan_backward(self):
        """Marks which layers must pass a gradient to their inputs: those with a trainable layer
        (or a graph input whose gradient is wanted) upstream. A frozen prefix is skipped whole."""
        wants = {id(tensor): self.input_grads_needed for tensor in self.inputs}
        self._skip = set()
        for node in self.nodes:
            upstream = any(wants[id(parent)] for parent in node.inputs)
            node.layer.input_grad_needed = upstream
            trains = node.layer.trainable and bool(node.layer.params)
            wants[id(node)] = upstream or trains
            if not wants[id(node)]:
                self._skip.add(id(node))

    def backward(self, grads):
        """Runs the layers backward from the gradients of the outputs (a list; None for an output
        that receives none); returns the gradients of the inputs (None where not needed)."""
        self.plan_backward()
        pending = {}

        def accumulate(tensor, grad):
            # Never in place: a layer may hand the same array to several inputs (Add does).
            key = id(tensor)
            pending[key] = grad if key not in pending else pending[key] + grad

        for tensor, grad in zip(self.outputs, grads):
            if grad is not None:
                accumulate(tensor, grad)
        for node in reversed(self.nodes):
            grad = pending.pop(id(node), None)
            if grad is None or id(node) in self._skip:
                continue
            result = node.layer.backward(grad)
            if result is None:
                continue
            for parent, parent_grad in zip(node.inputs, result if node.layer.takes_list else [result]):
                if parent_grad is not None:
                    accumulate(parent, parent_grad)
        return [pending.get(id(tensor)) for tensor in self.inputs]


def _batched(shape):
    if shape and isinstance(shape[0], (tuple, list)):
        return [(None,) + tuple(each) for each in shape]
    return (None,) + tuple(shape)
