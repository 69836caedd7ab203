"""torch.nn definitions with the architecture and state-dict keys of torchvision's AlexNet, VGG,
ResNet, GoogLeNet and MobileNetV2 (torchvision itself is not a dependency), and a LeNet-5: the networks of
pyconvx.models in torch, for the equivalence tests and the end-to-end rows of `pyconvx bench`.
Importing this module imports torch; nothing else in pyconvx imports it."""
import torch
from torch import nn


def lenet5(num_classes=10):
    return nn.Sequential(_named([
        ("c1", nn.Conv2d(1, 6, 5)), ("t1", nn.Tanh()), ("s2", nn.AvgPool2d(2)),
        ("c3", nn.Conv2d(6, 16, 5)), ("t3", nn.Tanh()), ("s4", nn.AvgPool2d(2)),
        ("c5", nn.Conv2d(16, 120, 5)), ("t5", nn.Tanh()), ("flatten", nn.Flatten()),
        ("f6", nn.Linear(120, 84)), ("t6", nn.Tanh()), ("output", nn.Linear(84, num_classes)),
    ]))


def _named(pairs):
    from collections import OrderedDict
    return OrderedDict(pairs)


class AlexNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        relu = nn.ReLU
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), relu(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), relu(), nn.Conv2d(384, 256, 3, padding=1), relu(),
            nn.Conv2d(256, 256, 3, padding=1), relu(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 36, 4096), relu(), nn.Dropout(0.5), nn.Linear(4096, 4096), relu(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class VGG(nn.Module):
    def __init__(self, config, num_classes=1000, hidden=4096, pooled=7):
        super().__init__()
        stack, channels = [], 3
        for item in config:
            if item == "M":
                stack.append(nn.MaxPool2d(2, 2))
            else:
                stack += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*stack)
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pooled * pooled, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, hidden),
            nn.ReLU(), nn.Dropout(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    growth = 1

    def __init__(self, channels, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.downsample = _projection(channels, width, stride)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    growth = 4

    def __init__(self, channels, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU()
        self.downsample = _projection(channels, width * 4, stride)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return self.relu(h + (x if self.downsample is None else self.downsample(x)))


def _projection(channels, out, stride):
    if stride == 1 and channels == out:
        return None
    return nn.Sequential(nn.Conv2d(channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))


class ResNet(nn.Module):
    def __init__(self, block, counts, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=1):
            blocks = []
            for index in range(count):
                blocks.append(block(channels, width, 2 if stage > 1 and index == 0 else 1))
                channels = width * block.growth
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BasicConv2d(nn.Module):
    def __init__(self, channels, out, kernel_size, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(channels, out, kernel_size, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, channels, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(channels, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(channels, c3_reduce, 1), BasicConv2d(c3_reduce, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(channels, c5_reduce, 1), BasicConv2d(c5_reduce, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(channels, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, channels, num_classes):
        super().__init__()
        self.conv = BasicConv2d(channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(0.7)

    def forward(self, x):
        x = torch.flatten(self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """Returns [logits, aux1, aux2] with aux_logits, in eval mode too (for the comparison)."""

    def __init__(self, num_classes=1000, aux_logits=False):
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        side = [self.aux1(x)] if self.aux1 is not None else []
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        side += [self.aux2(x)] if self.aux2 is not None else []
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return [logits] + side if side else logits


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation with ReLU6: children 0 (conv), 1 (batch norm), 2."""

    def __init__(self, channels, out, kernel_size, stride=1, groups=1):
        super().__init__(nn.Conv2d(channels, out, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, channels, out, stride, expansion):
        super().__init__()
        hidden = channels * expansion
        self.use_residual = stride == 1 and channels == out
        units = [ConvBNReLU6(channels, hidden, 1)] if expansion != 1 else []
        units += [ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False),
                  nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*units)

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        stages = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                  (6, 320, 1, 1))
        units, channels = [ConvBNReLU6(3, 32, 3, 2)], 32
        for expansion, out, repeats, stride in stages:
            for repeat in range(repeats):
                units.append(InvertedResidual(channels, out, stride if repeat == 0 else 1, expansion))
                channels = out
        units.append(ConvBNReLU6(channels, 1280, 1))
        self.features = nn.Sequential(*units)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))
