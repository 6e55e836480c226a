"""Move one data set's results folder of schema 4 (a folder per method, the baseline copied into each) into a result
store (schema 5, one record per model), once:

    python -m records.migrate OLD_DATASET_FOLDER STORE_ROOT
    python -m records.migrate docs/results/first-study/fashion-mnist docs/results/first-study   # e.g.

The copies of one model must agree in everything but their folder; nothing is written unless every file moves.
Kept as the one-off tool that moved the committed results in December 2026.
"""
import argparse
import json
from pathlib import Path

from common.cli import run_main
from common.errors import FileProblem
from models.spec import ModelSpec
from records.record import ResultRecord, write_record
from records.store import ResultStore

OLD_SCHEMA = 4
DERIVED = ("summary.csv", "eps_star.csv", "summary.md")


def upgrade(data):
    """The schema-5 document of a parsed schema-4 one: ``spec`` in place of dataset, method and variant."""
    data = dict(data)
    variant, dataset = data.pop("variant"), data.pop("dataset")
    data.pop("method"), data.pop("schema_version")
    model = data["checkpoint"]["metadata"]["recipe"]["model"]
    spec = ModelSpec.from_record({**variant, "dataset": dataset, "model": model})
    return {"format": data.pop("format"), "schema_version": 5, "spec": spec.to_record(), **data}, spec


def migrate(old_folder, root):
    """The records written into the store at ``root`` from the method folders of ``old_folder``."""
    old_folder, store = Path(old_folder), ResultStore(root)
    sources = sorted(path for path in old_folder.glob("*/*.json") if not path.name.startswith("."))
    if not sources:
        raise FileProblem(f"{old_folder} holds no method folder with result files; name a data set's folder of "
                          f"schema {OLD_SCHEMA}, e.g. docs/results/first-study/fashion-mnist")
    moved = {}  # spec -> (document, source)
    for source in sources:
        data = json.loads(source.read_text(encoding="utf-8"))
        if data.get("schema_version") != OLD_SCHEMA:
            raise FileProblem(f"{source} is not a result file of schema {OLD_SCHEMA}; move it out of {old_folder}")
        document, spec = upgrade(data)
        if spec in moved and moved[spec][0] != document:
            raise FileProblem(f"{source} and {moved[spec][1]} hold different evaluations of {spec.name}; keep the "
                              f"right one and move the other out of {old_folder}")
        moved.setdefault(spec, (document, source))
    records = [ResultRecord.from_json(document, store.path(spec)) for spec, (document, _) in moved.items()]
    for record in records:
        write_record(record)
    for source in sources:
        source.unlink()
    for folder in {source.parent for source in sources}:
        for name in DERIVED:
            (folder / name).unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old_folder", type=Path, help="a data set's folder of method folders (schema 4)")
    parser.add_argument("root", type=Path, help="the store's root (its data set folder is made inside)")
    args = parser.parse_args(argv)
    records = migrate(args.old_folder, args.root)
    print(f"migrate: {len(records)} records from {args.old_folder} into {args.root}")


if __name__ == "__main__":
    run_main(main)
