"""Activation sparsity (fraction of exact zeros per layer) and clean accuracy, measured in one pass."""
import torch

from sparsity.hooks import record_activations

EVAL_BATCH_SIZE = 500


def as_model_input(batch, device):
    """uint8 images (CIFAR storage) or floats in [0, 1] -> float32 on ``device``."""
    batch = batch.to(device, non_blocking=True)
    return batch.float().div_(255) if batch.dtype == torch.uint8 else batch.float()


@torch.no_grad()
def evaluate_clean(model, x, y=None, batch_size=EVAL_BATCH_SIZE, device=None):
    """One eval-mode pass over ``x``: ``{"accuracy": float | None, "activation_sparsity": {layer: fraction},
    "predictions": int64 (N,) on the device}``.

    ``x`` is uint8 (N, C, H, W) or float in [0, 1]; accuracy needs labels ``y``. Sparsity is measured at
    the layers of a registered model (``LAYER_NAMES``); any other model gets an empty dict.
    The model's train/eval mode is restored afterwards.
    """
    device = device or next(model.parameters()).device
    layers = getattr(model, "LAYER_NAMES", ())
    was_training = model.training
    model.eval()
    zeros = torch.zeros(len(layers), dtype=torch.float64, device=device)
    sizes = torch.zeros(len(layers), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    predictions = []
    with record_activations(model, layers) as activations:
        for start in range(0, len(x), batch_size):
            predictions.append(model(as_model_input(x[start:start + batch_size], device)).argmax(1))
            for index, layer in enumerate(layers):
                zeros[index] += (activations[layer] == 0).sum()
                sizes[index] += activations[layer].numel()
            if y is not None:
                correct += (predictions[-1] == y[start:start + batch_size].to(device)).sum()
    model.train(was_training)
    fractions = (zeros / sizes).tolist()
    return {
        "accuracy": correct.item() / len(x) if y is not None else None,
        "activation_sparsity": dict(zip(layers, fractions)),
        "predictions": torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64, device=device),
    }


def activation_sparsity(model, x, batch_size=EVAL_BATCH_SIZE, device=None):
    """``{layer: fraction of exact zeros}`` of every layer's output activation over ``x`` (eval mode, one pass)."""
    return evaluate_clean(model, x, None, batch_size, device)["activation_sparsity"]


# A model counts as having learned when its accuracy beats chance (1 / classes) by at least this much;
# below it, robustness numbers compare noise.
LEARNED_MARGIN = 0.05


def learned(accuracy, num_classes):
    """Whether a clean accuracy is clearly above chance."""
    return accuracy >= 1 / num_classes + LEARNED_MARGIN
