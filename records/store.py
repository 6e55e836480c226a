"""The result store: every model's record once (a shared baseline too), at ``{root}/{dataset}/{model}/{name}.json``.
A foreign JSON file there is skipped with a warning; a malformed or misplaced record of ours stops the reader."""
import warnings
from pathlib import Path

from common.errors import FileProblem
from common.io import atomic_write_text
from records.parts import FieldReader
from records.record import _load_json, is_ours, read_record, write_record, ResultRecord
from records.summary import summary_csv

SUMMARY_NAME = "summary.csv"


class ResultStore:
    def __init__(self, root, warn=None):
        self.root = Path(root)
        self.warn = warn or (lambda message: warnings.warn(message, stacklevel=3))

    def path(self, spec):
        return spec.folder(self.root) / f"{spec.name}.json"

    def get(self, spec):
        """The record of ``spec``, or None where it has none."""
        path = self.path(spec)
        return read_record(path) if path.is_file() else None

    def put(self, record):
        """Write ``record`` where its spec puts it; returns it as read back."""
        if record.path != self.path(record.spec):
            raise ValueError(f"record of {record.spec.name} aimed at {record.path}, not {self.path(record.spec)}")
        return write_record(record)

    def records(self, dataset=None, select=None):
        """Every record under the root (of ``dataset``; ``select``: a predicate on the spec), in table order."""
        pattern = f"{dataset or '*'}/*/*.json"
        found, foreign = [], []
        for path in sorted(self.root.glob(pattern)):
            if path.name.startswith(".") or not path.is_file():
                continue  # an editor's or an atomic write's leftover
            data = _load_json(path, FieldReader(path))
            if not is_ours(data):
                foreign.append(path)
                continue
            record = ResultRecord.from_json(data, path)
            if path != self.path(record.spec):
                raise FileProblem(f"{path} holds {record.spec.dataset} {record.spec.model} model {record.spec.name}, "
                                  f"which belongs in {self.path(record.spec)}; move it there", "results_dir")
            if select is None or select(record.spec):
                found.append(record)
        if foreign:
            self.warn(f"{self.root} holds JSON files that are not result files, skipped: "
                      f"{', '.join(str(p.relative_to(self.root)) for p in foreign)}")
        return sorted(found, key=lambda r: (r.spec.dataset, r.spec.model, r.spec.order(r.layer_names)))

    def write_summary(self, dataset=None):
        """Rewrite each ``{dataset}/{model}/summary.csv`` from its records; returns the paths written."""
        folders = {}
        for record in self.records(dataset):
            folders.setdefault(record.spec.folder(self.root), []).append(record)
        for folder, records in folders.items():
            atomic_write_text(folder / SUMMARY_NAME, summary_csv(records), location="results_dir")
        return [folder / SUMMARY_NAME for folder in folders]
