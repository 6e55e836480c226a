"""Square attack (Andriushchenko et al., 2020), L-inf, from the official AutoAttack package, with exact per-image
query counts: the package's count (the start and each iteration while unfooled) plus the clean check before the
search, as NES counts it (an image misclassified from the start costs 1 query, one never fooled ``queries + 2``).
"""
from dataclasses import dataclass

import torch
from pyautoattack.square import SquareAttack

from attacks.autoattack import private_rng
from attacks.base import (BLACK_BOX, DEFAULT_EPS, QUERY_SUBSET, Attack, AttackRun, AttackSettings, attack_objective,
                          check_inputs, eval_mode)
from common import validation
from common.cli import option


@dataclass(frozen=True)
class SquareSettings(AttackSettings):
    queries: int = option(5000, "Square's query budget per image (default {default}, AutoAttack's)", metavar="N")
    quick = {"queries": 200}

    def validate(self):
        validation.integer(self.queries, "queries", minimum=1)


class Square(Attack):
    """``x_adv, queries = Square(model, eps=8/255, queries=5000)(x, y, targeted=False)``, with AutoAttack's settings:
    p_init 0.8, one restart, margin loss, no rescaled schedule."""

    name = "square"
    threat_model = BLACK_BOX
    counts_queries = True
    Settings = SquareSettings

    def __init__(self, model, eps=DEFAULT_EPS, queries=5000, p_init=0.8, seed=0):
        super().__init__(model, seed if seed is not None else 0)
        self.eps = validation.number(eps, "eps", minimum=0, maximum=1)
        self.queries = validation.integer(queries, "queries", minimum=1)
        self.p_init = validation.number(p_init, "p_init", above=0, maximum=1)

    def settings(self):
        return {"eps": self.eps, "queries": self.queries, "p_init": self.p_init, "package": "pyautoattack"}

    @classmethod
    def evaluation_runs(cls, model, config):
        queries = config.settings_of(cls.name).queries
        return [AttackRun(cls.name, f"Square ({queries} queries)", cls(model, eps=config.eps, queries=queries,
                                                                         seed=config.seed), images=QUERY_SUBSET)]

    def __call__(self, x, y, targeted=False):
        x, y = check_inputs(self.model, x, y)
        queries = torch.ones(len(x), dtype=torch.int64, device=x.device)  # the clean check
        x_adv = x.clone()
        with eval_mode(self.model), torch.no_grad(), private_rng(x.device):
            torch.manual_seed(self.seed)
            active = (~attack_objective(self.model(x), y, targeted)[1]).nonzero().squeeze(1)
            if len(active):
                search = SquareAttack(self.model, norm="Linf", n_queries=self.queries, eps=self.eps,
                                      p_init=self.p_init, n_restarts=1, seed=self.seed, targeted=targeted,
                                      loss="margin", resc_schedule=False, device=x.device)
                search.init_hyperparam(x)
                used, found = search.attack_single_run(x[active], y[active])
                queries[active] += used.to(torch.int64)
                x_adv[active] = found
        return x_adv, queries
