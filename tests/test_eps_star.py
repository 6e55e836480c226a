"""eps* as the minimum over all evidence: no attack the evaluation ran undercuts it (on a trained model, and in the
record, where a reader checks it), and the audit at eps* scale catches a deliberately weakened search."""
import copy
import math
import warnings

import pytest
import torch

from attacks import APGD
from common.errors import FileProblem
from evaluation.checks import check_eps_star_matches_autoattack
from evaluation.config import EvalConfig
from evaluation.metrics import run_attack
from evaluation.minimal import ATTACK_PREFIX, Evidence, Search, median_correct, minimal_perturbations
from records.parts import Audit, AuditRadius, AuditReference, EpsStarEntry, FieldReader
import evaluation.model
from test_robust_eval import EPS, evaluate, ordinary  # noqa: F401 (the trained-model fixture)

CPU = torch.device("cpu")
# a short search (few FAB iterations, a short bisection), so that the fixed-eps attacks have something to undercut
SHORT = dict(fab_steps=2, fab_restarts=1, minimal_targets=1, steps=5)


def values(entry_list):
    return torch.tensor([math.inf if v is None else v for v in entry_list], dtype=torch.float64)


@pytest.fixture(scope="module")
def report(ordinary):  # noqa: F811
    model, x, y = ordinary
    config = EvalConfig().with_options(
        attacks=("pgd", "square"), eps=EPS, alpha=EPS / 4, eps_sweep=(EPS / 2, EPS), check_n=0,
        query_n=8, square_queries=50, minimal_norms=("linf",), audit_radii=(f"{EPS:g}",),
        batch_size=32, **SHORT)
    with pytest.MonkeyPatch.context() as patch:
        # the audit's plumbing with AutoAttack's first two parts (APGD-CE, APGD-T): the full ensemble's Square is
        # too slow for the suite, and which attack audits does not change what is checked here
        patch.setattr(evaluation.model, "AutoAttack", APGD)
        return evaluate(model, x[:32], y[:32], config)


def test_no_image_has_an_eps_star_above_an_eps_at_which_any_attack_fooled_it(report):
    entry = report.minimal["linf"]
    eps_star = values(entry.eps_star)
    runs = entry.attack_eps
    # every fixed-eps run is there: the protocol's, the curve's other eps, the audit's AutoAttack
    assert set(runs) == {"pgd", "square", f"pgd@{EPS / 2:.4g}", f"audit_autoattack@{EPS:.4g}"}
    for key in ("pgd", "square"):  # what each run fooled is what its entry reports (Square: its 8 images)
        fooled = sum(size is not None for size in runs[key].size)
        attack = report.attacks[key]
        assert fooled == round((1 - attack.robust_acc) * attack.n)
    for key, run in runs.items():
        size = values(run.size)
        fooled = torch.isfinite(size)
        # Square (8 images) and the audit's AutoAttack (only the images nothing broke at its radius) may fool none
        assert (fooled.any() or key in ("square", f"audit_autoattack@{EPS:.4g}"))
        assert (size[fooled] <= run.eps * (1 + 1e-5)).all()
        assert (eps_star[fooled] <= size[fooled]).all(), key
    audit = report.audit.radii[0]
    fooled = ~torch.tensor(audit.autoattack_still_correct)
    assert (eps_star[fooled] <= audit.eps * (1 + 1e-5)).all()
    assert report.worst_case.robust_acc <= min(a.robust_acc for a in report.attacks.values())


def test_a_record_whose_eps_star_exceeds_an_attacks_fooling_example_is_refused(report, tmp_path):
    reader = FieldReader(tmp_path / "standard_seed0.json")
    entry = report.minimal["linf"]
    where = "minimal_perturbation.linf"
    assert EpsStarEntry.read(reader, entry.to_json(), where) == entry  # as written, it reads
    tampered = copy.deepcopy(entry.to_json())
    index = next(i for i, size in enumerate(tampered["attack_eps"]["pgd"]["size"]) if size)
    tampered["eps_star"][index] = min(tampered["limit"], tampered["attack_eps"]["pgd"]["size"][index] * 2)
    with pytest.raises(FileProblem, match=rf"eps_star\[{index}\].*exceeds the size .* by which pgd fooled"):
        EpsStarEntry.read(reader, tampered, where)


def test_audit_fails_on_a_weakened_eps_star_and_passes_on_the_full_search(ordinary):  # noqa: F811
    model, x, y = ordinary
    limit = 4 * EPS
    full = minimal_perturbations(model, x, y, "linf", Search(fab_steps=50, fab_restarts=1, targets=1,
                                                             bisection_steps=20, limit=limit, batch_size=64))
    # FAB off, a one-step untargeted bisection
    weak = minimal_perturbations(model, x, y, "linf", Search(fab_steps=0, bisection_steps=1, targets=0, limit=limit,
                                                             batch_size=64))
    median = float(median_correct(full.eps_star))
    radii, examples = [], {}
    for multiple in (0.5, 1.0, 1.5):
        radius = multiple * median
        # AutoAttack's gradient parts (APGD-CE, APGD-T) audit here: its Square alone would take the suite's budget
        outcome = run_attack(APGD(model, eps=radius, seed=0), x, y, batch_size=64)
        still_correct = outcome["adv_pred"] == y
        radii.append(AuditRadius(radius, f"{multiple}x", len(y), still_correct.float().mean().item(),
                                 (full.eps_star > radius).double().mean().item(), tuple(still_correct.tolist())))
        examples[radius] = outcome["adversarial"]
    audit = Audit(AuditReference("own", median), tuple(radii), (), ())
    checks = {}
    for name, result in (("full", full), ("weak", weak)):
        entry = EpsStarEntry.measured(result, seed=0, settings={}, before_audit=result.eps_star)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            checks[name] = check_eps_star_matches_autoattack({"linf": entry}, audit)
        assert bool(caught) == (name == "weak")
    assert checks["full"].status == "passed", checks["full"].detail
    assert checks["weak"].status == "failed", checks["weak"].detail
    assert f"eps* overstates robustness at radius {1.5 * median:.4g}" in checks["weak"].detail
    # the audit's examples then bound eps*: the weak search's overstated values come down to them
    radius = 1.5 * median
    weak.fold(model, x, y, Evidence("audit", radius, torch.arange(len(x)), examples[radius]))
    fooled = ~torch.tensor(audit.radii[2].autoattack_still_correct)
    assert (weak.eps_star[fooled] <= radius * (1 + 1e-5)).all()
    assert any(method == ATTACK_PREFIX + "audit" for method in weak.method)


def test_the_audit_can_run_on_the_first_images_only(ordinary):  # noqa: F811
    """--audit-n: AutoAttack at each radius on the first N evaluated images (its cost is AutoAttack on every image
    still robust there); the check and both robust accuracies are read on those N, and only they gain evidence."""
    model, x, y = ordinary
    config = EvalConfig().with_options(
        attacks=("pgd",), eps=EPS, alpha=EPS / 4, check_n=0, minimal_norms=("linf",),
        audit_radii=(f"{EPS:g}",), audit_n=12, batch_size=32, **SHORT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation.model, "AutoAttack", APGD)
        report = evaluate(model, x[:32], y[:32], config)
    audit = report.audit.radii[0]
    assert audit.n == 12 and len(audit.autoattack_still_correct) == 12
    before = values(report.minimal["linf"].eps_star_before_audit)
    assert audit.eps_star_robust_acc == pytest.approx((before[:12] > audit.eps).double().mean().item())
    sizes = report.minimal["linf"].attack_eps[f"audit_autoattack@{EPS:.4g}"].size
    assert all(size is None for size in sizes[12:])
    assert report.eval_config["audit_n"] == 12
    check = next(c for c in report.checks if c.name == "eps_star_matches_autoattack")
    assert check.status == "passed" and "on 12 images" in check.detail
