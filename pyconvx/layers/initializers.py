"""Weight initialisers by name. Each takes (shape, fan_in, fan_out, rng) and returns float32.

fan_in is the number of inputs one output unit sums (C/groups * R * S for a convolution, the
input features of a dense layer), fan_out the number of units one input feeds.
"""
import numpy as np

__all__ = ["get", "INITIALIZERS"]


# Drawn in float32 directly: several times faster than float64 draws cast afterwards, which
# matters for the 100-million-weight heads of VGG and AlexNet.
def _normal(std):
    def draw(shape, rng):
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(std)
        return values
    return draw


def _uniform(limit):
    def draw(shape, rng):
        values = rng.random(shape, dtype=np.float32)
        values -= np.float32(0.5)
        values *= np.float32(2 * limit)
        return values
    return draw


# He et al. 2015 keep the variance of ReLU activations constant through depth (2 / fan_in);
# Glorot & Bengio 2010 balance forward and backward variance (2 / (fan_in + fan_out)).
_FACTORIES = {
    "he_normal": lambda fi, fo: _normal(np.sqrt(2.0 / fi)),
    "he_uniform": lambda fi, fo: _uniform(np.sqrt(6.0 / fi)),
    "glorot_normal": lambda fi, fo: _normal(np.sqrt(2.0 / (fi + fo))),
    "glorot_uniform": lambda fi, fo: _uniform(np.sqrt(6.0 / (fi + fo))),
    "lecun_normal": lambda fi, fo: _normal(np.sqrt(1.0 / fi)),
    "zeros": lambda fi, fo: (lambda shape, rng: np.zeros(shape)),
    "ones": lambda fi, fo: (lambda shape, rng: np.ones(shape)),
}

INITIALIZERS = tuple(_FACTORIES)


def get(initializer, owner, name="initializer"):
    """A function (shape, fan_in, fan_out, rng) -> float32 array, from a name or a callable;
    `name` is the argument the error message names.

    >>> w = get("he_normal", "demo")((256, 64, 3, 3), 576, 2304, np.random.default_rng(0))
    >>> w.dtype, round(float(w.std()), 3)  # sqrt(2 / 576)
    (dtype('float32'), 0.059)
    """
    if callable(initializer):
        return lambda shape, fan_in, fan_out, rng: np.asarray(
            initializer(shape, fan_in, fan_out, rng), dtype=np.float32).reshape(shape)
    if not isinstance(initializer, str) or initializer not in _FACTORIES:
        raise ValueError(f"{owner}: {name} must be a callable or one of {INITIALIZERS}, got {name}={initializer!r}")
    factory = _FACTORIES[initializer]
    return lambda shape, fan_in, fan_out, rng: np.asarray(
        factory(max(fan_in, 1), max(fan_out, 1))(shape, rng), dtype=np.float32)
