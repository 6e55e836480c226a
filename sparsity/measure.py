"""Activation sparsity (fraction of exact zeros per layer) and clean accuracy, measured in one pass."""
import torch

from models.simple_cnn import LAYER_NAMES

EVAL_BATCH_SIZE = 500


def _as_input(batch, device):
    """uint8 images (CIFAR storage) or floats in [0, 1] -> float32 on ``device``."""
    batch = batch.to(device, non_blocking=True)
    return batch.float().div_(255) if batch.dtype == torch.uint8 else batch.float()


@torch.no_grad()
def evaluate_clean(model, x, y=None, batch_size=EVAL_BATCH_SIZE, device=None):
    """One eval-mode pass over ``x``: ``{"accuracy": float | None, "activation_sparsity": {layer: fraction}}``.

    ``x`` is uint8 (N, 3, 32, 32) or float in [0, 1]; accuracy needs labels ``y``.
    The model's train/eval mode is restored afterwards.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    zeros = torch.zeros(len(LAYER_NAMES), dtype=torch.float64, device=device)
    sizes = torch.zeros(len(LAYER_NAMES), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(x), batch_size):
        logits, activations = model(_as_input(x[start:start + batch_size], device), return_activations=True)
        for index, layer in enumerate(LAYER_NAMES):
            zeros[index] += (activations[layer] == 0).sum()
            sizes[index] += activations[layer].numel()
        if y is not None:
            correct += (logits.argmax(1) == y[start:start + batch_size].to(device)).sum()
    model.train(was_training)
    fractions = (zeros / sizes).tolist()
    return {
        "accuracy": correct.item() / len(x) if y is not None else None,
        "activation_sparsity": dict(zip(LAYER_NAMES, fractions)),
    }


def activation_sparsity(model, x, batch_size=EVAL_BATCH_SIZE, device=None):
    """``{layer: fraction of exact zeros}`` of every layer's output activation over ``x`` (eval mode, one pass)."""
    return evaluate_clean(model, x, None, batch_size, device)["activation_sparsity"]
