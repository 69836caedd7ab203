"""Argument checks the model builders share."""
from ..layers._padding import positive_int
from ..layers.graph import sample_shape


def checked(num_classes, input_shape, owner):
    """(num_classes, (C, H, W)) validated, ValueError naming the builder otherwise."""
    shape = sample_shape(input_shape, f"{owner}: input_shape")
    if len(shape) != 3:
        raise ValueError(f"{owner}: input_shape must be (C, H, W), got {input_shape!r}")
    return positive_int(num_classes, "num_classes", owner), shape
