"""Observing layer activations from outside the model, through forward hooks."""
import contextlib


@contextlib.contextmanager
def record_activations(model, layers):
    """``with record_activations(model, ["conv3"]) as acts: model(x)`` fills ``acts["conv3"]`` with the output
    of ``model.activations["conv3"]`` (the layer's activation, with autograd history) on each forward pass."""
    outputs = {}

    def recorder(layer):
        def hook(module, inputs, output):
            outputs[layer] = output
        return hook

    handles = [model.activations[layer].register_forward_hook(recorder(layer)) for layer in layers]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
