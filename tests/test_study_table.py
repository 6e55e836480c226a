"""The study tables (vis/study.py): counts with Wilson intervals, the paired eps* verdict, one baseline row."""
import re
import statistics
from pathlib import Path

import pytest

from common.stats import wilson_interval
from sparsity.variants import Variant
from vis.eps_star import eps_text
from vis.study import accuracy_table, black_box_table, load_study, outside_baseline, study_markdown
from vis_fixture import attack_entry, minimal_from, write_result

ROOT = Path(__file__).resolve().parents[1]
SPARSITY = {"conv1": 0.4, "fc1": 0.7}
LIMIT = 0.4


def attacks(robust, n=100, queries=None):
    entries = {"autoattack": {**attack_entry("autoattack", n, 90, 90 - robust), "threat_model": "white-box",
                              "title": "AutoAttack"}}
    if queries:
        entries["square"] = {**attack_entry("square", 20, 18, 18 - robust // 5, median=queries), "title": "Square"}
    return entries


def eps_star(values):
    return {"linf": minimal_from(values, LIMIT)}


BASE = [0.0] * 10 + [0.02 + 0.001 * i for i in range(90)]


@pytest.fixture
def study(tmp_path):
    results = tmp_path / "cifar10"
    for method in ("l1", "dropout"):
        for seed in (0, 1, 2):
            write_result(results, method, Variant.baseline(seed), 0.9, SPARSITY, attacks(5, queries=300),
                         minimal=eps_star(BASE))
    # L1 at conv1 doubles every image's eps*; dropout at fc1 changes nothing
    write_result(results, "l1", Variant("l1", "conv1", 0.01, 0), 0.88, {**SPARSITY, "conv1": 0.9},
                 attacks(12, queries=600), minimal=eps_star([2 * v for v in BASE]))
    write_result(results, "dropout", Variant("dropout", "fc1", 0.3, 0), 0.9, SPARSITY, attacks(5),
                 minimal=eps_star(BASE))
    return load_study(tmp_path, "cifar10", ["l1", "dropout"])


def test_wilson_interval_matches_known_values():
    assert wilson_interval(5, 100) == pytest.approx((0.02154, 0.11175), abs=1e-5)
    assert wilson_interval(0, 100)[0] == 0 and wilson_interval(100, 100)[1] == 1
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_tables_pool_seeds_show_intervals_and_mark_medians_outside_the_baselines_interval(study):
    l1, dropout = study
    baseline = l1.baseline.eps_star["linf"]
    assert outside_baseline(next(v for v in l1.variants if not v.is_baseline).eps_star["linf"], baseline)
    assert not outside_baseline(next(v for v in dropout.variants if not v.is_baseline).eps_star["linf"], baseline)
    assert not outside_baseline(baseline, baseline)
    rows = accuracy_table(study)[2:]
    assert len(rows) == 3 and sum(row.startswith("| standard |") for row in rows) == 1
    base, conv1, fc1 = rows
    low, high = wilson_interval(15, 300)
    assert f"| 15/300 = 5.0 [{100 * low:.1f}, {100 * high:.1f}] |" in base  # 3 seeds pooled
    assert "| 0, 1, 2 |" in base and "| 90.0 ± 0.0 |" in base and "(n = 300) |" in base
    assert "| 12/100 = 12.0 [" in conv1 and "(n = 100); outside standard's interval |" in conv1
    assert "| 90.0 / 40.0 ± 0.0 |" in conv1 and "| +15.2/255 [" in conv1  # paired with seed 0 of the baseline
    median = statistics.median(BASE)
    each, doubled = eps_text(l1.dataset, median, "linf"), eps_text(l1.dataset, 2 * median, "linf")
    assert f"| {each} / {each} / {each} |" in base and f"| {doubled} |" in conv1  # each seed's own median
    assert "outside" not in fc1 and "| +0/255 [+0/255, +0/255] (n = 100) |" in fc1
    black_box = black_box_table(study)
    assert "Square: robust k/n (median queries)" in black_box[0]
    assert "| 3/60 (300) |" in black_box[2] and "| 2/20 (600) |" in black_box[3] and "| — |" in black_box[4]


def test_readme_tables_are_generated_from_the_committed_fashion_mnist_results():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- study tables: begin[^\n]*-->\n(.*?)<!-- study tables: end -->", readme, re.S)
    assert found, "README.md lost its study-table markers"
    committed = load_study(ROOT / "docs" / "results", "fashion-mnist", ["l1", "dropout", "kwta"])
    assert len(committed) == 3, "docs/results/fashion-mnist/ should hold the study's l1, dropout and kwta folders"
    assert found.group(1) == study_markdown(committed), (
        "README.md's study tables differ from the committed results; paste the output of "
        "python experiments/fashion_mnist.py --tables between the markers")
