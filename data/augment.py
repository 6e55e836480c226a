"""Training augmentation of whole batches on their device (docs/data.md): per-sample random parameters from a
seedable generator, applied in one gather (standard, crop) or one grid_sample (original), with no per-image loop."""
import math

import torch
import torch.nn.functional as F

from common import validation

AUGMENTATIONS = ("standard", "crop", "original", "none")
CROP_PADDING = 4
MAX_ROTATION_DEGREES = 8.0
# torchvision.transforms.RandomResizedCrop defaults, which the original repository used.
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10


def validate_augmentation(kind):
    return validation.choice(kind, "augment", AUGMENTATIONS)


def augment_batch(x, kind, generator=None):
    """Augment a float batch (B, C, H, W) in [0, 1], keeping shape, dtype, device and range. "standard": pad 4, crop,
    flip; "crop": no flip; "original": the original's flip, rotation and RandomResizedCrop resampled once, bilinearly
    (torchvision's nearest-neighbour rotation and antialiased resize are costlier); "none": ``x`` itself."""
    validate_augmentation(kind)
    if kind == "none" or x.shape[0] == 0:
        return x
    draw = _Sampler(x.shape[0], generator, x.device)
    if kind in ("standard", "crop"):
        return _pad_crop(x, draw, flip=kind == "standard")
    return _flip_rotate_resized_crop(x, draw)


class _Sampler:
    """Per-sample random numbers from ``generator``, drawn on its device and returned on the batch's."""

    def __init__(self, batch, generator, device):
        self.batch, self.generator, self.device = batch, generator, device
        self.source = generator.device if generator is not None else device

    def uniform(self, low, high, *extra_dims):
        u = torch.rand((self.batch, *extra_dims), generator=self.generator, device=self.source)
        return (u * (high - low) + low).to(self.device)

    def integers(self, high):
        """Integers uniform in [0, high); ``high`` is an int or a per-sample tensor."""
        return (self.uniform(0.0, 1.0) * high).floor().clamp_max(high - 1).long()

    def coin(self):
        return self.uniform(0.0, 1.0) < 0.5


def _pad_crop(x, draw, flip):
    batch, channels, height, width = x.shape
    padded_width = width + 2 * CROP_PADDING
    padded = F.pad(x, (CROP_PADDING,) * 4).flatten(2)
    top = draw.integers(2 * CROP_PADDING + 1)
    left = draw.integers(2 * CROP_PADDING + 1)
    rows = top[:, None] + torch.arange(height, device=x.device)
    columns = torch.arange(width, device=x.device)
    # Flipping is reading the crop window's columns right to left, so it costs nothing extra.
    if flip:
        columns = torch.where(draw.coin()[:, None], columns.flip(0), columns)
    columns = left[:, None] + columns
    index = (rows[:, :, None] * padded_width + columns[:, None, :]).reshape(batch, 1, height * width)
    return padded.gather(2, index.expand(batch, channels, height * width)).reshape(batch, channels, height, width)


def _resized_crop_boxes(draw, height, width):
    """RandomResizedCrop's box sampling, all attempts for all samples at once -> (top, left, box_h, box_w)."""
    area = draw.uniform(*CROP_SCALE, CROP_ATTEMPTS) * (height * width)
    ratio = torch.exp(draw.uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), CROP_ATTEMPTS))
    box_w = torch.sqrt(area * ratio).round()
    box_h = torch.sqrt(area / ratio).round()
    fits = (box_w >= 1) & (box_w <= width) & (box_h >= 1) & (box_h <= height)
    first_fit = fits.float().argmax(dim=1, keepdim=True)
    any_fit = fits.any(dim=1)
    # torchvision falls back to the whole image (the central crop of allowed ratio) when no attempt fits.
    box_w = torch.where(any_fit, box_w.gather(1, first_fit).squeeze(1), float(width))
    box_h = torch.where(any_fit, box_h.gather(1, first_fit).squeeze(1), float(height))
    top = draw.integers(height - box_h + 1).float()
    left = draw.integers(width - box_w + 1).float()
    return top, left, box_h, box_w


def _flip_rotate_resized_crop(x, draw):
    batch, _, height, width = x.shape
    top, left, box_h, box_w = _resized_crop_boxes(draw, height, width)
    angle = torch.deg2rad(draw.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    flip_sign = torch.where(draw.coin(), -1.0, 1.0)

    # Coordinates are grid_sample's: [-1, 1] across the image. Output pixels first
    # map into the crop box of the rotated image, clamped to the box's outer pixel
    # centres, as resizing a cropped image reads nothing outside the crop.
    zero = torch.zeros_like(angle)
    box = torch.stack([
        torch.stack([box_w / width, zero, (2 * left + box_w) / width - 1], dim=1),
        torch.stack([zero, box_h / height, (2 * top + box_h) / height - 1], dim=1),
    ], dim=1)
    grid = F.affine_grid(box, [batch, 1, height, width], align_corners=False)
    low = torch.stack([(2 * left + 1) / width - 1, (2 * top + 1) / height - 1], dim=1)
    high = torch.stack([(2 * (left + box_w) - 1) / width - 1, (2 * (top + box_h) - 1) / height - 1], dim=1)
    grid = torch.maximum(torch.minimum(grid, high[:, None, None]), low[:, None, None])

    # Rotated pixel p comes from the flipped image at R^-1 p, whose pixel q comes
    # from x at F q; rotation is done in pixel units, as x and y scale differently
    # on non-square images. Outside x is zero, the fill torchvision's rotation uses.
    cos, sin = torch.cos(angle), torch.sin(angle)
    aspect = height / width
    rotate = torch.stack([
        torch.stack([cos, -sin * aspect], dim=1),
        torch.stack([sin / aspect, cos], dim=1),
    ], dim=1)
    flip = torch.diag_embed(torch.stack([flip_sign, torch.ones_like(flip_sign)], dim=1))
    to_source = flip @ rotate
    grid = (grid.flatten(1, 2) @ to_source.transpose(1, 2)).reshape(batch, height, width, 2)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
