"""The typed result record (evaluation.records): one writer and one reader that give back what was written, a reader
that refuses a tampered field by name and an older schema with the command that migrates it, and that migration
(evaluation.migrate) on a schema-3 file as the first study wrote it: the same numbers, idempotent, all or nothing.

tests/legacy_records/ holds one result file as schema 3 wrote it (the first study's kwta conv1_s0.1_seed0, before its
migration), so that the migration is tested on a real old file, not on one made up here."""
import copy
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import FileProblem
from evaluation import migrate
from evaluation.record_parts import AdaptiveRun, Audit, AuditRadius, AuditReference
from evaluation.records import SCHEMA_VERSION, ResultRecord, read_record, write_record
from evaluation.summary import summary_row
from sparsity.variants import Variant
from vis_fixture import BASELINE_SPARSITY, attack_entry, minimal_document, result_record

ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "legacy_records" / "schema3_kwta_conv1_s0.1_seed0.json"
MIGRATED = ROOT / "docs" / "results" / "first-study" / "fashion-mnist" / "kwta" / "conv1_s0.1_seed0.json"


def full_record(tmp_path):
    """A record with every part filled: query statistics, both norms of eps*, a robustness curve and an audit."""
    attacks = {"pgd": attack_entry("pgd", 100, 80, 70),
               "square": attack_entry("square", 20, 16, 12, median=300.0)}
    audit = Audit(AuditReference("standard_seed0 median eps* (correct images)", 0.02),
                  (AuditRadius(0.01, "0.5x", 4, 0.75, 0.75, (True, False, True, True)),),
                  (AdaptiveRun("bpda_identity", "bpda_identity@0.01", 0.01, "white-box", {"steps": 8}, 100, 0.5),),
                  ("transfer: no same-seed baseline checkpoint to transfer from",))
    record = result_record(tmp_path, "l1", Variant("l1", "conv3", 0.01, 1), 0.8, BASELINE_SPARSITY, attacks,
                           curves={"pgd": [(1 / 255, 100, 0.6), (2 / 255, 100, 0.3)]},
                           minimal={norm: minimal_document(0.8, 0.5, 1, norm=norm) for norm in ("linf", "l2")},
                           train_loss=0.25)
    return replace(record, audit=audit)


def test_to_json_and_from_json_give_back_the_record(tmp_path):
    record = full_record(tmp_path)
    document = json.loads(json.dumps(record.to_json(), allow_nan=False))  # as a file holds it
    assert document["format"] == "sparsity-robustness/result" and document["schema_version"] == SCHEMA_VERSION
    assert ResultRecord.from_json(document, record.path, "l1") == record
    assert write_record(record) == record and read_record(record.path, "l1") == record
    assert json.loads(record.path.read_text()) == document  # the writer writes to_json, nothing else
    # the typed fields hold what the file says, under the file's names
    assert record.attacks["square"].queries.median_queries == document["attacks"]["square"]["median_queries"] == 300.0
    assert "median_queries" not in document["attacks"]["pgd"] and not record.attacks["pgd"].counts_queries
    assert record.minimal["l2"].eps_star == tuple(document["minimal_perturbation"]["l2"]["eps_star"])
    assert record.audit.radii[0].autoattack_still_correct == (True, False, True, True)
    assert record.checkpoint.final_train_loss == 0.25 and record.model == "simple_cnn"
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
])
def test_the_reader_refuses_a_tampered_field_naming_the_file_and_the_field(tmp_path, path, value, named):
    record = full_record(tmp_path)
    document = json.loads(json.dumps(record.to_json()))
    with pytest.raises(FileProblem) as raised:
        ResultRecord.from_json(tampered(document, _set(path, value)), record.path, "l1")
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


def legacy_copy(tmp_path):
    """The schema-3 file in a results folder of its own, as the first study had it."""
    folder = tmp_path / "results" / "fashion-mnist" / "kwta"
    folder.mkdir(parents=True)
    return Path(shutil.copy(LEGACY, folder / "conv1_s0.1_seed0.json"))


def test_an_older_schema_is_refused_with_the_command_that_migrates_it(tmp_path):
    path = legacy_copy(tmp_path)
    with pytest.raises(FileProblem) as raised:
        read_record(path, "kwta")
    message = str(raised.value)
    assert f"{path} is a result file of schema 3" in message and "\n" not in message
    assert message.endswith(f"migrate it once with: python -m evaluation.migrate {path.parent}")


def test_the_migration_keeps_every_number_of_a_schema_3_file(tmp_path, capsys):
    path = legacy_copy(tmp_path)
    old = json.loads(path.read_text())
    assert old["schema_version"] == 3 and "attack_eps" not in old["minimal_perturbation"]["linf"]
    assert migrate.main([str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out.strip() == (f"migrated 1 result file(s) to schema {SCHEMA_VERSION}, 0 already "
                                               f"current (under {tmp_path / 'results'})")
    record = read_record(path, "kwta")
    # the same numbers, read through the typed record
    assert (record.clean_acc, record.n_test, record.sparsity) == (old["clean_acc"], old["n_test"],
                                                                  old["activation_sparsity"])
    for key, entry in old["attacks"].items():
        numbers = record.attacks[key].numbers()
        assert {name: entry[name] for name in numbers} == numbers, key
    linf, old_linf = record.minimal["linf"], old["minimal_perturbation"]["linf"]
    assert list(linf.eps_star) == old_linf["eps_star"] and list(linf.pgd_eps) == old_linf["pgd_eps"]
    assert [m if m != "bisection" else "pgd" for m in linf.method] == old_linf["method"]
    assert (linf.median, linf.interval.low, linf.pgd.median) == (old_linf["median"], old_linf["interval"]["low"],
                                                                 old_linf["pgd"]["median"])
    assert linf.n_by_method == {"fab": old_linf["n_by_method"]["fab"], "bisection": old_linf["n_by_method"]["pgd"]}
    assert 0 < linf.median_correct and linf.attack_eps == {} and record.audit is None
    assert record.worst_case.to_json() == old["worst_case"] and [c.to_json() for c in record.checks] == old["checks"]
    # and it is what the committed first study holds, migrated by the same command
    committed = read_record(MIGRATED, "kwta")
    assert replace(record, path=committed.path) == committed
    assert summary_row(record) == summary_row(committed)


def test_the_migration_is_idempotent(tmp_path, capsys):
    path = legacy_copy(tmp_path)
    assert migrate.main([str(tmp_path)]) == 0
    text, stamp = path.read_text(), path.stat().st_mtime_ns
    (path.parent / "notes.json").write_text('{"todo": "rerun"}')  # not ours: skipped, kept
    capsys.readouterr()
    assert migrate.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "migrated 0 result file(s)" in out and "1 already current, 1 JSON file(s) not ours skipped" in out
    assert path.read_text() == text and path.stat().st_mtime_ns == stamp
    assert (path.parent / "notes.json").read_text() == '{"todo": "rerun"}'


def test_bad_input_exits_2_with_one_line_and_changes_no_file(tmp_path, capsys):
    path = legacy_copy(tmp_path)
    original = path.read_bytes()
    broken = path.parent / "conv4_s0.1_seed0.json"
    broken.write_text('{"format": "sparsity-robustness/result", "schema_version": 3,')
    assert migrate.main([str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and str(broken) in err and "malformed JSON" in err
    assert path.read_bytes() == original  # all or nothing: the good file waits for the bad one
    broken.unlink()
    assert migrate.main([str(tmp_path / "results"), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{tmp_path / 'missing'} is not a folder" in err
    assert path.read_bytes() == original


def test_the_migration_command_runs_as_documented(tmp_path):
    """`python -m evaluation.migrate RESULTS_DIR...`, as docs/file-formats.md shows it."""
    legacy_copy(tmp_path)
    command = [sys.executable, "-m", "evaluation.migrate"]
    done = subprocess.run([*command, str(tmp_path / "results")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("migrated 1 result file(s)"), done.stderr
    missing = subprocess.run([*command, str(tmp_path / "nowhere")], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "is not a folder" in missing.stderr
