"""Rewrite result files of an older schema (2, 3) to the current one, once:

    python -m evaluation.migrate RESULTS_DIR [RESULTS_DIR ...]

Every ``*.json`` result file of this project under each folder (searched recursively; a file sits in its method's
folder, whose name is its ``method``) is read, converted, checked as ``evaluation.records`` reads it, and only then
written back atomically, with nothing written unless every file converts: a file that does not is named on one
stderr line (exit status 2) and no file is changed. Files already in the current schema are left untouched
(running it again changes nothing); JSON files that are not ours are skipped. The numbers are kept as they are:

- version 2 (the only data set then was CIFAR-10): ``dataset`` ``cifar10``; parts it lacked (``worst_case``,
  ``minimal_perturbation``, ``eval_images_sha256``) as a record without them: null, ``{}``, null;
- version 3: eps* per norm names the bisection ``bisection`` (it was PGD-driven then and named ``pgd``; its
  ``settings`` say so), gains ``median_correct`` (the median over the correctly classified images, computed from
  its per-image values) and ``attack_eps`` ``{}`` (no fixed-eps run was folded into eps* then), and the record an
  ``audit`` of null (none ran).
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from common.errors import FileProblem
from common.io import atomic_write_text
from data.registry import LEGACY_DATASET
from evaluation.minimal import BISECTION_METHOD, json_value, median_correct
from evaluation.record_parts import FieldReader
from evaluation.records import SCHEMA_VERSION, ResultRecord, _load_json, is_ours

LEGACY_PGD_METHOD = "pgd"  # schema <= 3: the bisection was PGD-driven and named after it
MIGRATES = (2, 3)


def upgrade(data):
    """The current schema's document for a parsed version 2 or 3 ``data`` (a new dict; ``data`` is kept)."""
    data = json.loads(json.dumps(data))
    version = data["schema_version"]
    if version == 2:
        data["dataset"] = LEGACY_DATASET
        for key, empty in (("worst_case", None), ("minimal_perturbation", {}), ("eval_images_sha256", None)):
            data.setdefault(key, empty)
    for entry in (data.get("minimal_perturbation") or {}).values():
        if not isinstance(entry, dict):
            continue  # the reader names it
        if isinstance(entry.get("method"), list):
            entry["method"] = [BISECTION_METHOD if m == LEGACY_PGD_METHOD else m for m in entry["method"]]
        if isinstance(entry.get("n_by_method"), dict):
            entry["n_by_method"] = {BISECTION_METHOD if m == LEGACY_PGD_METHOD else m: count
                                    for m, count in entry["n_by_method"].items()}
        if "median_correct" not in entry and isinstance(entry.get("eps_star"), list):
            eps_star = torch.tensor([float("inf") if v is None else v for v in entry["eps_star"]], dtype=torch.float64)
            correct = median_correct(eps_star)
            entry["median_correct"] = None if correct is None else json_value(correct)
        entry.setdefault("attack_eps", {})
    data.setdefault("audit", None)
    data["schema_version"] = SCHEMA_VERSION
    return data


def result_files(folders):
    """Every JSON file under ``folders`` (hidden ones are editor or atomic-write leftovers), sorted."""
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileProblem(f"{folder} is not a folder; name a results folder (e.g. results/ or "
                              f"docs/results/first-study/)")
        found += [path for path in folder.rglob("*.json") if path.is_file() and not path.name.startswith(".")]
    return sorted(set(found))


def plan(folders):
    """``(to write: [(path, text)], already current, not ours)``, every file converted and checked; FileProblem
    naming the first file that cannot be."""
    writes, current, foreign = [], 0, 0
    for path in result_files(folders):
        reader = FieldReader(path, path.parent.name)
        data = _load_json(path, reader)
        if not is_ours(data):
            foreign += 1
            continue
        version = data.get("schema_version")
        if version == SCHEMA_VERSION:
            ResultRecord.from_json(data, path, path.parent.name)  # a current file that does not read is named too
            current += 1
            continue
        reader.require(version in MIGRATES, f"schema_version {version!r}: this command migrates "
                                            f"{', '.join(map(str, MIGRATES))} (version 1 files: evaluate the "
                                            f"variant again)")
        record = ResultRecord.from_json(upgrade(data), path, path.parent.name)
        writes.append((path, json.dumps(record.to_json(), indent=2, allow_nan=False) + "\n"))
    return writes, current, foreign


def migrate(folders):
    """Migrate every result file under ``folders``; returns the summary line."""
    writes, current, foreign = plan(folders)
    for path, text in writes:
        atomic_write_text(path, text)
    return (f"migrated {len(writes)} result file(s) to schema {SCHEMA_VERSION}, {current} already current"
            + (f", {foreign} JSON file(s) not ours skipped" if foreign else "")
            + f" (under {', '.join(map(str, folders))})")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m evaluation.migrate",
                                     description=f"Rewrite result files of schema {' and '.join(map(str, MIGRATES))} "
                                                 f"to schema {SCHEMA_VERSION} (once; idempotent; all or nothing).")
    parser.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR",
                        help="folders to search for result files (recursively)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        print(migrate(args.results_dirs))
    except FileProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
