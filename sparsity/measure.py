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
    """One eval-mode pass over ``x`` (uint8 or float in [0, 1]): ``{"accuracy": float | None (without ``y``),
    "activation_sparsity": {layer: fraction} (at a registered model's ``LAYER_NAMES``), "predictions": int64 (N,)}``.
    The model's train/eval mode is restored afterwards."""
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
    return {"accuracy": correct.item() / len(x) if y is not None else None,
            "activation_sparsity": dict(zip(layers, (zeros / sizes).tolist())),
            "predictions": torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64, device=device)}


# A model counts as having learned when its accuracy beats chance (1 / classes) by at least this much;
# below it, robustness numbers compare noise.
LEARNED_MARGIN = 0.05


def learned(accuracy, num_classes):
    """Whether a clean accuracy is clearly above chance."""
    return accuracy >= 1 / num_classes + LEARNED_MARGIN
