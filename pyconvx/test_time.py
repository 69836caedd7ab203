"""Test-time tricks: averaging a model's predictions over crops of each image, and averaging the
predictions of several independently trained models (an ensemble).

Both trade evaluation time (10 crops: 10 forward passes; k models: k) for a point or so of
accuracy, the competitions' trade; a deployed system usually cannot afford it.
"""
import numpy as np

from .augment.crops import five_crop, ten_crop

__all__ = ["multi_crop_predict", "Ensemble"]

_CROPS = {1: lambda x, size: five_crop(x, size)[4:], 5: five_crop, 10: ten_crop}


def multi_crop_predict(model, x, size, crops=10, batch_size=32):
    """The mean of model.predict over `crops` crops of every image of x (N, C, H, W): 10 (ten_crop),
    5 (five_crop) or 1 (the centre). Shapes: -> as model.predict on (N, C) + size.

    >>> import pyconvx
    >>> model = pyconvx.Sequential([pyconvx.layers.Flatten(), pyconvx.layers.Dense(2)], input_shape=(1, 4, 4))
    >>> multi_crop_predict(model, np.zeros((3, 1, 6, 6)), 4).shape
    (3, 2)
    """
    if crops not in _CROPS:
        raise ValueError(f"multi_crop_predict: crops must be 1, 5 or 10, got crops={crops!r}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"multi_crop_predict: x must be an (N, C, H, W) batch, got shape {x.shape}")
    views = _CROPS[crops](x, size)
    total = None
    for view in views:  # one forward pass per crop position, over the whole batch
        prediction = np.asarray(model.predict(np.ascontiguousarray(view), batch_size=batch_size), np.float64)
        total = prediction if total is None else total + prediction
    return (total / len(views)).astype(np.float32)


class Ensemble:
    """Averages the outputs of independently trained models (same input and output shapes).

    >>> import pyconvx
    >>> make = lambda seed: pyconvx.Sequential([pyconvx.layers.Dense(3)], input_shape=(4,), seed=seed)
    >>> Ensemble([make(0), make(1)]).predict(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(self, models):
        self.models = list(models)
        if not self.models:
            raise ValueError("Ensemble: models must hold at least one model, got none")
        for model in self.models:
            if not callable(getattr(model, "predict", None)):
                raise TypeError(f"Ensemble: every model needs a predict method, got {model!r}")

    def predict(self, x, batch_size=32):
        """The mean of the models' predict(x): an array of the models' output shape."""
        outputs = [np.asarray(model.predict(x, batch_size=batch_size), np.float64) for model in self.models]
        shapes = {output.shape for output in outputs}
        if len(shapes) > 1:
            raise ValueError(f"Ensemble: the models' outputs differ in shape: {sorted(shapes)}")
        return (sum(outputs) / len(outputs)).astype(np.float32)
