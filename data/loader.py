"""Batches straight from uint8 tensors held on the training device (no DataLoader, no workers): each batch is
gathered, converted and augmented there, so on a GPU the host never touches the pixels after the first copy."""
import math

import numpy as np
import torch

from data.augment import augment_batch, validate_augmentation


class TensorLoader:
    """Iterable of ``(x, y)`` on ``device``: x float (B, C, H, W) in [0, 1], y int64. Shuffling and augmentation are a
    function of (seed, epoch); each iteration moves to the next epoch, and ``set_epoch(e)`` resumes at epoch e."""

    def __init__(self, x_uint8, y, batch_size, shuffle, augment, device, seed, drop_last=False, channels_last=None):
        if x_uint8.dtype != torch.uint8:
            raise TypeError(f"TensorLoader takes uint8 images, got {x_uint8.dtype}")
        if len(x_uint8) != len(y):
            raise ValueError(f"{len(x_uint8)} images but {len(y)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.augment = validate_augmentation(augment)
        self.device = torch.device(device)
        self.x = x_uint8.to(self.device)
        self.y = y.to(self.device, dtype=torch.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.y) // self.batch_size if self.drop_last else math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        # SeedSequence mixes (seed, epoch) so nearby seeds and epochs give unrelated streams.
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator(device=self.device).manual_seed(int(state[0]) << 32 | int(state[1]))
        order = torch.randperm(len(self.y), generator=generator, device=self.device) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            index = slice(start, stop) if order is None else order[start:stop]
            images = augment_batch(self.x[index].float().div_(255), self.augment, generator)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.y[index]
