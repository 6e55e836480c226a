"""Depth-2 ReLU network N(x) = sum_j v_j relu(w_j . x + b_j), as one module or as R independent copies stacked
along a leading run axis, so that R trainings or evaluations become one batched matrix product."""
from dataclasses import dataclass

import torch
from torch import nn

INIT_STD = 0.01


class ReLUNet(nn.Module):
    """One network; ``forward`` returns the single logit (N,), the prediction is its sign."""

    def __init__(self, d, width):
        super().__init__()
        self.hidden = nn.Linear(d, width, bias=True)
        self.output = nn.Linear(width, 1, bias=False)

    def forward(self, x):
        return self.output(torch.relu(self.hidden(x))).squeeze(-1)


@dataclass
class StackedReLUNet:
    """R networks of the same shape: ``w`` (R, width, d), ``b`` (R, width), ``v`` (R, width)."""

    w: torch.Tensor
    b: torch.Tensor
    v: torch.Tensor

    @classmethod
    def initialise(cls, d, width, generators, std=INIT_STD):
        """Small normal initialisation of every parameter, one seeded generator per network."""
        drawn = [[torch.randn(*shape, generator=generator) * std for shape in ((width, d), (width,), (width,))]
                 for generator in generators]
        return cls(*(torch.stack(part) for part in zip(*drawn)))

    @property
    def runs(self):
        return self.w.shape[0]

    def pre_activations(self, x):
        """x (R, n, d) -> w.x + b, shape (R, n, width)."""
        return torch.baddbmm(self.b.unsqueeze(1), x, self.w.transpose(1, 2))

    def output(self, hidden):
        """Hidden activations (R, n, width) -> logits (R, n)."""
        return self.output_of(self.v, hidden)

    @staticmethod
    def output_of(v, hidden):
        """Logits (R, n) of output weights ``v`` (R, width) on hidden activations (R, n, width)."""
        # as v^T hidden^T: on a CPU, bmm with a (1, width) left factor is several times faster than with a
        # (width, 1) right one
        return torch.bmm(v.unsqueeze(1), hidden.transpose(1, 2)).squeeze(1)

    def __call__(self, x):
        return self.output(torch.relu(self.pre_activations(x)))

    def select(self, index):
        """The networks at ``index`` (a copy)."""
        return StackedReLUNet(self.w[index].clone(), self.b[index].clone(), self.v[index].clone())

    def squared_norm(self):
        """||theta||^2 per network; N is 2-homogeneous in theta, so margins are normalised by it."""
        return self.w.pow(2).sum((1, 2)) + self.b.pow(2).sum(1) + self.v.pow(2).sum(1)

    def single(self, r):
        """Network ``r`` as a standalone ReLUNet (for attacks written against nn.Module)."""
        width, d = self.w.shape[1:]
        net = ReLUNet(d, width).to(self.w.dtype)
        with torch.no_grad():
            net.hidden.weight.copy_(self.w[r])
            net.hidden.bias.copy_(self.b[r])
            net.output.weight.copy_(self.v[r].unsqueeze(0))
        return net.eval().requires_grad_(False)
