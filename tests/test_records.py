"""The typed result record (records.record) and its store (records.store): one writer and one reader that give back
what was written, a reader that refuses a tampered field by name and an older schema with the command that migrates
it, the store that keeps each model once where its spec puts it, and the one-off migration (records.migrate) of a
schema-4 results folder (a folder per method, the baseline copied into each) into a store.

tests/legacy_records/ holds three schema-4 files of the first study as they were committed (kwta's conv1 model and the
baseline copied into two method folders), so that the migration is tested on real old files."""
import copy
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import FileProblem
from records import migrate
from records.parts import AdaptiveRun, Audit, AuditRadius, AuditReference
from records.record import SCHEMA_VERSION, ResultRecord, read_record, write_record
from records.store import ResultStore
from records.summary import summary_row
from vis_fixture import BASELINE_SPARSITY, attack_entry, minimal_document, result_record, spec

ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "legacy_records" / "fashion-mnist"
MIGRATED = ROOT / "docs" / "results" / "first-study"


def full_record(tmp_path):
    """A record with every part filled: query statistics, both norms of eps*, a robustness curve and an audit."""
    attacks = {"pgd": attack_entry("pgd", 100, 80, 70),
               "square": attack_entry("square", 20, 16, 12, median=300.0)}
    audit = Audit(AuditReference("standard_seed1 median eps* (correct images)", 0.02),
                  (AuditRadius(0.01, "0.5x", 4, 0.75, 0.75, (True, False, True, True)),),
                  (AdaptiveRun("bpda_identity", "bpda_identity@0.01", 0.01, "white-box", {"steps": 8}, 100, 0.5),),
                  ("transfer: no surrogate checkpoint to transfer from",))
    record = result_record(tmp_path, spec("l1", "conv3", 0.01, 1), 0.8, BASELINE_SPARSITY, attacks,
                           curves={"pgd": [(1 / 255, 100, 0.6), (2 / 255, 100, 0.3)]},
                           minimal={norm: minimal_document(0.8, 0.5, 1, norm=norm) for norm in ("linf", "l2")},
                           train_loss=0.25, machine={"cpu": "x", "cpu_capability": "AVX2", "threads": 1})
    return replace(record, audit=audit)


def test_to_json_and_from_json_give_back_the_record(tmp_path):
    record = full_record(tmp_path)
    document = json.loads(json.dumps(record.to_json(), allow_nan=False))  # as a file holds it
    assert document["format"] == "sparsity-robustness/result" and document["schema_version"] == SCHEMA_VERSION
    assert document["spec"] == {"method": "l1", "layer": "conv3", "strength": 0.01, "seed": 1, "adv": None,
                                "adv_eps": None, "dataset": "cifar10", "model": "simple_cnn",
                                "name": "l1_conv3_s0.01_seed1"}
    assert ResultRecord.from_json(document, record.path) == record
    assert write_record(record) == record and read_record(record.path) == record
    assert record.path == tmp_path / "cifar10" / "simple_cnn" / "l1_conv3_s0.01_seed1.json"
    assert json.loads(record.path.read_text()) == document  # the writer writes to_json, nothing else
    # the typed fields hold what the file says, under the file's names
    assert record.attacks["square"].queries.median_queries == document["attacks"]["square"]["median_queries"] == 300.0
    assert "median_queries" not in document["attacks"]["pgd"] and not record.attacks["pgd"].counts_queries
    assert record.minimal["l2"].eps_star == tuple(document["minimal_perturbation"]["l2"]["eps_star"])
    assert record.audit.radii[0].autoattack_still_correct == (True, False, True, True)
    assert record.checkpoint.final_train_loss == 0.25 and record.spec.model == "simple_cnn"
    assert record.curves["pgd"][1].robust_acc == 0.3 and document["robustness_curves"]["pgd"][1] == {
        "eps": 2 / 255, "n": 100, "robust_acc": 0.3}

def tampered(document, change):
    document = copy.deepcopy(document)
    change(document)
    return document


def _set(path, value):
    """A change setting ``document[path[0]][path[1]]... = value`` (None as the value deletes the key)."""
    def change(document):
        *parents, last = path
        for key in parents:
            document = document[key]
        if value is None:
            del document[last]
        else:
            document[last] = value
    return change


@pytest.mark.parametrize("path, value, named", [
    (("attacks", "pgd", "n_success"), 101, "attacks.pgd.n_success exceeds n"),
    (("attacks", "pgd", "title"), None, "attacks.pgd.title is missing"),
    (("attacks", "square", "max_queries"), None, "attacks.square must hold all of"),
    (("attacks", "pgd", "robust_acc"), 1.5, "attacks.pgd.robust_acc must be a number in [0, 1]"),
    (("minimal_perturbation", "l2", "n_by_method", "fab"), 1000, "minimal_perturbation.l2.n_by_method.fab disagrees"),
    (("minimal_perturbation", "linf", "fab_eps"), [0.01], "minimal_perturbation.linf.fab_eps must be a list of 100"),
    (("minimal_perturbation", "linf", "interval", "level"), 2, "minimal_perturbation.linf.interval.level"),
    (("audit", "radii", 0, "autoattack_still_correct"), [True], "audit.radii[].autoattack_still_correct"),
    (("audit", "adaptive", 0, "settings"), "none", "audit.adaptive[].settings must be an object"),
    (("worst_case", "n_robust"), 10 ** 6, "worst_case.n_robust exceeds n"),
    (("robustness_curves", "pgd", 0, "robust_acc"), -0.1, "robustness_curves.pgd[].robust_acc"),
    (("checks", 0, "detail"), None, "checks must be a list of"),
    (("checkpoint", "sha256"), "abc", "checkpoint.sha256 must be 64 hex digits"),
    (("timings", "pgd_s"), -1.0, "timings.pgd_s must be a number >= 0"),
    (("query_indices",), [0, -3], "query_indices[] must be a non-negative integer"),
    (("eval_config", "quick"), None, "eval_config.quick is missing"),
    (("eval_config", "eps"), "8/255", "eval_config.eps must be a number"),
    (("eval_images_sha256",), None, "eval_images_sha256 is missing"),
    (("spec", "layer"), "conv9", "spec.layer 'conv9' is not one of"),
    (("spec", "seed"), 2, "it holds model l1_conv3_s0.01_seed2 but is named l1_conv3_s0.01_seed1.json"),
    (("spec", "dataset"), "fashion-mnist", "spec says fashion-mnist simple_cnn but its checkpoint was trained as "
                                           "cifar10 simple_cnn"),
])
def test_the_reader_refuses_a_tampered_field_naming_the_file_and_the_field(tmp_path, path, value, named):
    record = full_record(tmp_path)
    document = json.loads(json.dumps(record.to_json()))
    with pytest.raises(FileProblem) as raised:
        ResultRecord.from_json(tampered(document, _set(path, value)), record.path)
    message = str(raised.value)
    assert str(record.path) in message and named in message and "\n" not in message


def test_a_record_that_would_not_read_back_is_never_written(tmp_path):
    record = full_record(tmp_path)
    write_record(record)
    before = record.path.read_bytes()
    broken = replace(record, attacks={"pgd": replace(record.attacks["pgd"], n_correct=1000)})
    with pytest.raises(FileProblem, match="attacks.pgd.n_correct exceeds n"):
        write_record(broken)
    assert record.path.read_bytes() == before


def test_the_store_keeps_each_model_once_where_its_spec_puts_it(tmp_path):
    store = ResultStore(tmp_path, warn=lambda message: warnings.append(message))
    warnings = []
    record = full_record(tmp_path)
    assert store.get(record.spec) is None
    assert store.put(record) == record and store.get(record.spec) == record and store.records() == [record]
    (record.path.parent / "notes.json").write_text('{"todo": "rerun"}')  # not ours: skipped with a warning
    assert store.records("cifar10") == [record] and "notes.json" in warnings[0]
    assert store.records("fashion-mnist") == [] and store.records(select=lambda s: s.seed == 0) == []
    elsewhere = tmp_path / "cifar10" / "other_model" / record.path.name  # a record outside its place is refused
    elsewhere.parent.mkdir()
    shutil.copy(record.path, elsewhere)
    with pytest.raises(FileProblem, match="which belongs in"):
        store.records()
    elsewhere.unlink()
    with pytest.raises(ValueError, match="aimed at"):
        store.put(replace(record, path=elsewhere))
    assert [path.name for path in store.write_summary()] == ["summary.csv"]


def test_an_older_schema_is_refused_with_the_command_that_migrates_it(tmp_path):
    path = Path(shutil.copy(LEGACY / "kwta" / "conv1_s0.1_seed0.json", tmp_path / "conv1_s0.1_seed0.json"))
    with pytest.raises(FileProblem) as raised:
        read_record(path)
    message = str(raised.value)
    assert f"{path} is a result file of schema 4" in message and "python -m records.migrate" in message
    assert "\n" not in message


def legacy_folder(tmp_path):
    return Path(shutil.copytree(LEGACY, tmp_path / "old" / "fashion-mnist"))


def test_the_migration_moves_each_model_once_and_keeps_every_number(tmp_path, capsys):
    old = legacy_folder(tmp_path)
    documents = {path.relative_to(old): json.loads(path.read_text()) for path in old.glob("*/*.json")}
    assert migrate.main([str(old), str(tmp_path / "store")]) is None
    assert capsys.readouterr().out.strip() == f"migrate: 2 records from {old} into {tmp_path / 'store'}"
    assert not list(old.glob("*/*"))  # the old files and folders are gone
    records = ResultStore(tmp_path / "store").records()
    assert [r.spec.name for r in records] == ["standard_seed0", "kwta_conv1_s0.1_seed0"]
    for record in records:
        name = "standard_seed0" if record.spec.is_baseline else "conv1_s0.1_seed0"
        old_document = documents[Path("kwta") / f"{name}.json"]
        document = record.to_json()
        for key in ("format", "schema_version", "spec", "dataset", "method", "variant"):
            document.pop(key, None), old_document.pop(key, None)
        assert document == old_document
    # and it is what the committed first study holds, moved by the same tool
    for record in records:
        committed = ResultStore(MIGRATED).get(record.spec)
        assert replace(record, path=committed.path) == committed and summary_row(record) == summary_row(committed)


def test_copies_that_differ_stop_the_migration_before_any_file_is_written(tmp_path, capsys):
    old = legacy_folder(tmp_path)
    copy_path = old / "dropout" / "standard_seed0.json"
    document = json.loads(copy_path.read_text())
    document["clean_acc"] = 0.5
    copy_path.write_text(json.dumps(document))
    with pytest.raises(SystemExit) as exit_info:
        migrate.run_main(migrate.main, [str(old), str(tmp_path / "store")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hold different evaluations of standard_seed0" in err
    assert not (tmp_path / "store").exists() and len(list(old.glob("*/*.json"))) == 3


def test_the_migration_command_runs_as_documented(tmp_path):
    """``python -m records.migrate OLD_DATASET_FOLDER STORE_ROOT``, as docs/file-formats.md shows it."""
    old = legacy_folder(tmp_path)
    command = [sys.executable, "-m", "records.migrate"]
    done = subprocess.run([*command, str(old), str(tmp_path / "store")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("migrate: 2 records"), done.stderr
    missing = subprocess.run([*command, str(tmp_path / "nowhere"), str(tmp_path / "store")], cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "holds no method folder" in missing.stderr
