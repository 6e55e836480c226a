"""Adaptive attacks for sparsity methods that mask gradients (Tramer, Carlini, Brendel & Madry, NeurIPS 2020), run
at the audit's radii wherever a model's method ``masks_gradients`` and folded into eps*: ``bpda_identity`` and
``bpda_relu`` (APGD through the masking layers' straight-through backward), ``nes_adaptive`` (on the query subset)
and ``transfer`` (APGD on the surrogate, ``ModelSpec.surrogate``). Adding one: a builder and a line in ADAPTIVE.
"""
from attacks.autoattack import APGD
from attacks.base import ALL_IMAGES, BLACK_BOX, QUERY_SUBSET, WHITE_BOX, Attack, check_inputs, eval_mode
from attacks.nes_adaptive import NESAdaptive


class CannotRun(Exception):
    """An adaptive attack that cannot run on this model; the message says why (the record keeps it)."""


class StraightThrough(APGD):
    """APGD through the masking layers with a straight-through backward pass (``backward_as``: one of the method's
    ``straight_through_modes``)."""

    name = "bpda"

    def __init__(self, model, eps, masking, backward_as, seed=0, iterations=None):
        super().__init__(model, eps=eps, seed=seed, iterations=iterations)
        self.masking, self.backward_as = masking, backward_as

    def settings(self):
        return {**super().settings(), "backward_as": self.backward_as}

    def __call__(self, x, y, targeted=False):
        with self.masking.straight_through(self.model, self.backward_as):
            return super().__call__(x, y, targeted)


class Transfer(Attack):
    """APGD-CE + APGD-T against ``source`` (another model of the same data), the examples kept as they are: the
    target model is used only to be fooled."""

    name = "transfer"
    threat_model = BLACK_BOX

    def __init__(self, model, source, eps, seed=0, iterations=None):
        super().__init__(model, seed)
        self.source = source
        self.apgd = APGD(source, eps=eps, seed=seed, iterations=iterations)

    def settings(self):
        return {"eps": self.apgd.eps, "source_attack": "apgd-ce apgd-t", "package": "pyautoattack"}

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        with eval_mode(self.model):
            return self.apgd(x, y, targeted)


def _bpda(backward_as):
    def build(model, eps, config, source, masking):
        if backward_as not in masking.straight_through_modes:
            raise CannotRun(f"{masking.name} offers no {backward_as} straight-through backward")
        iterations = config.settings_of("autoattack").iterations
        return StraightThrough(model, eps, masking, backward_as, config.seed, iterations), WHITE_BOX, ALL_IMAGES
    return build


def _nes(model, eps, config, source, masking):
    return NESAdaptive.configured(model, eps, config), BLACK_BOX, QUERY_SUBSET


def _transfer(model, eps, config, source, masking):
    if source is None:
        raise CannotRun("no surrogate checkpoint to transfer from")
    iterations = config.settings_of("autoattack").iterations
    return Transfer(model, source, eps, seed=config.seed, iterations=iterations), BLACK_BOX, ALL_IMAGES


# name -> builder(model, eps, config, surrogate model or None, the masking SparsityMethod) -> (attack, threat model,
# images); CannotRun where it cannot run
ADAPTIVE = {"bpda_identity": _bpda("identity"), "bpda_relu": _bpda("relu"), "nes_adaptive": _nes,
            "transfer": _transfer}
