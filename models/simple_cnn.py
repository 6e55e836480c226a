"""The real-data model (docs/usage.md, Train): conv1..conv4, fc1..fc3 on images in [0, 1], sized by their shape."""
import torch.nn as nn


class SimpleCNN(nn.Module):
    """``forward(x)`` returns logits; input in [0, 1] is rescaled to [-1, 1] inside. Every layer's output activation
    (post-ReLU; the logits for fc3) is the output of ``self.activations[layer]``, for hooks (``sparsity.hooks``)."""

    LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")

    def __init__(self, input_shape=(3, 32, 32), num_classes=10):
        super().__init__()
        channels, height, width = input_shape
        if min(height, width) < 16:
            raise ValueError(f"SimpleCNN needs images of at least 16x16 pixels, got {height}x{width}")
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(channels, 64, 3)
        self.conv2 = nn.Conv2d(64, 64, 3)
        self.conv3 = nn.Conv2d(64, 128, 3)
        self.conv4 = nn.Conv2d(128, 128, 3)
        # two valid 3x3 convolutions (-4 pixels) then a 2x2 pool, twice: 32 -> 5 (CIFAR-10), 28 -> 4 (MNIST)
        self.fc1 = nn.Linear(128 * _feature_size(height) * _feature_size(width), 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, num_classes)
        self.activations = nn.ModuleDict({name: nn.ReLU() for name in self.LAYER_NAMES[:-1]})
        self.activations["fc3"] = nn.Identity()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        act = self.activations
        h = x * 2 - 1
        h = act["conv2"](self.conv2(act["conv1"](self.conv1(h))))
        h = self.pool(h)
        h = act["conv4"](self.conv4(act["conv3"](self.conv3(h))))
        h = self.pool(h).flatten(1)
        h = act["fc2"](self.fc2(act["fc1"](self.fc1(h))))
        return act["fc3"](self.fc3(h))


def _feature_size(pixels):
    return ((pixels - 4) // 2 - 4) // 2
