"""Vardi, Yehudai & Shamir's (2022) data: points uniform on the sphere of radius sqrt(d), random ±1 labels."""
import math
from dataclasses import dataclass

import torch


@dataclass
class SphereData:
    x: torch.Tensor  # (m, d), every row of norm sqrt(d)
    y: torch.Tensor  # (m,), float labels in {-1, +1}


def sample_sphere_data(d, m, generator, dtype=torch.float32):
    """``m`` points (normalised Gaussians) and labels, advancing the caller's generator."""
    x = torch.randn(m, d, generator=generator, dtype=dtype)
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(d)
    y = torch.randint(0, 2, (m,), generator=generator).to(dtype) * 2 - 1
    return SphereData(x, y)
