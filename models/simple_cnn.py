"""The real-data model of DESIGN.md, with an optional dropout at one named layer."""
import torch.nn as nn
import torch.nn.functional as F

LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")


class SimpleCNN(nn.Module):
    """conv1..conv4, fc1..fc3 on 32x32 RGB inputs in [0, 1].

    ``dropout_layer``/``dropout_p`` put ``nn.Dropout`` on that layer's output
    activation (post-ReLU; the logits for fc3). ``forward(x, return_activations=True)``
    also returns every layer's output activation, which is what the L1 penalty
    and the sparsity measurement act on.
    """

    def __init__(self, num_classes=10, dropout_layer=None, dropout_p=0.0):
        super().__init__()
        if dropout_layer is not None and dropout_layer not in LAYER_NAMES:
            raise ValueError(f"unknown layer {dropout_layer!r}; valid layers: {' '.join(LAYER_NAMES)}")
        self.num_classes = num_classes
        self.dropout_layer = dropout_layer
        self.conv1 = nn.Conv2d(3, 64, 3)
        self.conv2 = nn.Conv2d(64, 64, 3)
        self.conv3 = nn.Conv2d(64, 128, 3)
        self.conv4 = nn.Conv2d(128, 128, 3)
        self.fc1 = nn.Linear(128 * 5 * 5, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, num_classes)
        self.dropout = nn.Dropout(dropout_p) if dropout_layer is not None else nn.Identity()

    def _output(self, name, activation, activations):
        if name == self.dropout_layer:
            activation = self.dropout(activation)
        if activations is not None:
            activations[name] = activation
        return activation

    def forward(self, x, return_activations=False):
        acts = {} if return_activations else None
        h = x * 2 - 1
        h = self._output("conv1", F.relu(self.conv1(h)), acts)
        h = self._output("conv2", F.relu(self.conv2(h)), acts)
        h = F.max_pool2d(h, 2)
        h = self._output("conv3", F.relu(self.conv3(h)), acts)
        h = self._output("conv4", F.relu(self.conv4(h)), acts)
        h = F.max_pool2d(h, 2).flatten(1)
        h = self._output("fc1", F.relu(self.fc1(h)), acts)
        h = self._output("fc2", F.relu(self.fc2(h)), acts)
        logits = self._output("fc3", self.fc3(h), acts)
        return (logits, acts) if return_activations else logits
