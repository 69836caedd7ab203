"""ResNet-18, -34 and -50 (He et al. 2016) as torchvision builds them."""
from .. import layers
from ..model import Sequential
from ._common import checked

__all__ = ["resnet18", "resnet34", "resnet50"]


def build_resnet(blocks_per_stage, bottleneck, num_classes, input_shape, seed, name, widths=(64, 128, 256, 512)):
    """The stem (7x7/2 convolution without bias, batch norm, ReLU, 3x3/2 max pool), four stages
    of residual blocks of widths[i] filters (stride 2 on the first block of stages 2-4), global
    average pooling and the logits. Layers conv1, bn1, relu, maxpool, layer1.0 ..., avgpool, fc."""
    stack = [
        layers.Conv2D(widths[0], 7, strides=2, padding=3, use_bias=False, name="conv1"),
        layers.BatchNormalization(name="bn1"),
        layers.ReLU(name="relu"),
        layers.MaxPooling2D(3, strides=2, padding=1, name="maxpool"),
    ]
    for stage, (count, filters) in enumerate(zip(blocks_per_stage, widths), start=1):
        for index in range(count):
            strides = 2 if stage > 1 and index == 0 else 1
            stack.append(layers.ResidualBlock(filters, strides=strides, bottleneck=bottleneck,
                                              name=f"layer{stage}.{index}"))
    stack += [layers.GlobalAveragePooling2D(name="avgpool"), layers.Dense(num_classes, name="fc")]
    return Sequential(stack, input_shape=input_shape, name=name, seed=seed)


def resnet18(num_classes=1000, input_shape=(3, 224, 224), seed=None):
    """ResNet-18: 2, 2, 2, 2 basic blocks. Shapes: (N, 3, H, W) -> (N, num_classes);
    11,689,512 parameters (without batch-norm statistics) for 1000 classes.

    >>> resnet18(num_classes=10, input_shape=(3, 32, 32)).output_shape
    (10,)
    """
    num_classes, input_shape = checked(num_classes, input_shape, "resnet18")
    return build_resnet((2, 2, 2, 2), False, num_classes, input_shape, seed, "resnet18")


def resnet34(num_classes=1000, input_shape=(3, 224, 224), seed=None):
    """ResNet-34: 3, 4, 6, 3 basic blocks. Shapes: (N, 3, H, W) -> (N, num_classes);
    21,797,672 parameters for 1000 classes.

    >>> resnet34(num_classes=10, input_shape=(3, 32, 32)).layers[-3].name
    'layer4.2'
    """
    num_classes, input_shape = checked(num_classes, input_shape, "resnet34")
    return build_resnet((3, 4, 6, 3), False, num_classes, input_shape, seed, "resnet34")


def resnet50(num_classes=1000, input_shape=(3, 224, 224), seed=None):
    """ResNet-50: 3, 4, 6, 3 bottleneck blocks (1x1, 3x3 with the stride, 1x1 to 4x the width).
    Shapes: (N, 3, H, W) -> (N, num_classes); 25,557,032 parameters for 1000 classes.

    >>> resnet50(num_classes=10, input_shape=(3, 32, 32)).layers[4].output_shape
    (256, 8, 8)
    """
    num_classes, input_shape = checked(num_classes, input_shape, "resnet50")
    return build_resnet((3, 4, 6, 3), True, num_classes, input_shape, seed, "resnet50")
