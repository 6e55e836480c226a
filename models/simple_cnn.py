"""The real-data model of docs/DESIGN.md: conv1..conv4, fc1..fc3 on 32x32 RGB inputs in [0, 1]."""
import torch.nn as nn


class SimpleCNN(nn.Module):
    """``forward(x)`` returns logits. Input in [0, 1] is rescaled to [-1, 1] inside the model.

    Every layer's output activation (post-ReLU; the logits for fc3) is the output
    of ``self.activations[layer]``, so code outside the model can observe or
    change it with hooks or by wrapping that module (see ``sparsity.hooks``).
    """

    LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")

    def __init__(self, num_classes=10):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 64, 3)
        self.conv2 = nn.Conv2d(64, 64, 3)
        self.conv3 = nn.Conv2d(64, 128, 3)
        self.conv4 = nn.Conv2d(128, 128, 3)
        self.fc1 = nn.Linear(128 * 5 * 5, 256)
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
