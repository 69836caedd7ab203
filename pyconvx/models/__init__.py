"""The case-study architectures: LeNet-5, AlexNet, VGG-16, ResNet-18/34/50, GoogLeNet and MobileNetV2.

Each function returns an untrained, built model whose outputs are logits (as torchvision's; the
cross-entropy losses take logits). num_classes sets the classifier's width and input_shape the
per-sample (C, H, W) the model is built for. Layer names follow torchvision's module paths
("features.0", "layer1.0", "inception3a"), so that model.load_torch_state_dict() loads a
torchvision state dict; at 3x224x224 with 1000 classes the parameter counts equal
torchvision's (count_params(include_state=False); count_params() adds the batch-norm running
statistics, as Keras does).

>>> from pyconvx import models
>>> models.lenet5().count_params()
61706
"""
from .alexnet import alexnet
from .googlenet import googlenet
from .lenet import lenet5
from .mobilenet import mobilenet_v2
from .resnet import resnet18, resnet34, resnet50
from .vgg import vgg16

__all__ = ["lenet5", "alexnet", "vgg16", "resnet18", "resnet34", "resnet50", "googlenet", "mobilenet_v2"]
