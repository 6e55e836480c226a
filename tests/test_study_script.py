"""experiments/fashion_mnist.py: every command it would run is one main.py accepts, and every arm's seeds are
declared up front, the same for every arm (nothing is added because of a result)."""
import importlib.util
from pathlib import Path

import pytest

from cli.eval import eval_config_from_args
from cli.train import recipe_from_args
from cli.variants import variants_from_args
from evaluation.records import load_records
from main import build_parser

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("fashion_mnist_study", ROOT / "experiments" / "fashion_mnist.py")
study = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(study)


def every_command(setup):
    return study.study_commands(setup) + study.figure_commands(setup)



def parsed(command):
    argv = command[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    parser.reject_other_modes(argv, args.mode)
    return args


@pytest.mark.parametrize("setup", [study.CPU, study.GPU], ids=["cpu", "gpu"])
def test_every_step_is_a_valid_main_py_command_of_the_declared_design(setup):
    trained, evaluated = set(), []
    for command in every_command(setup):
        assert command[0] == "main.py"
        args = parsed(command)
        names = {(variant.method, variant.name) for variant in variants_from_args(args)}
        if args.mode == "train":
            recipe = recipe_from_args(args)
            assert recipe.dataset == "fashion-mnist" and recipe.epochs == 3  # the converged recipe, every arm
            if setup is study.CPU:  # fp32 + channels_last, as the committed models were trained, whatever the probe
                assert args.amp is False and args.channels_last is True  # would pick on the machine at hand
            trained |= names
        elif args.mode == "eval":
            config = eval_config_from_args(args, "fashion-mnist")
            assert config.eps == 0.1 and "autoattack" in config.attacks and "linf" in config.minimal_norms
            assert config.audit_radii  # eps* audited at its own scale
            assert names <= trained  # nothing evaluated that was not trained
            evaluated += [(args.method, name) for _, name in sorted(names)]
    arms = {}
    for method, name in trained:
        arm, seed = name.rsplit("_seed", 1)
        arms.setdefault((method, arm), set()).add(int(seed))
    assert sorted(arms) == sorted([("standard", "standard"), ("standard", "standard_at-fgsm-rs-e0.1"),
                                   ("l1", "conv1_s2"), ("l1", "fc1_s1"), ("dropout", "conv1_s0.3"),
                                   ("kwta", "conv1_s0.1"), ("l1", "conv1_s2_at-fgsm-rs-e0.1")])
    assert len(setup["seeds"]) >= 5 and all(seeds == set(setup["seeds"]) for seeds in arms.values())
    # each method folder evaluates the standard baseline before its arms (the audit's radii and the transfer attack
    # read it), and the adversarially trained baseline before the sparse arm built on it
    for method in ("l1", "dropout", "kwta"):
        folder = [name for m, name in evaluated if m == method]
        assert folder[0].startswith("standard_seed")
    l1 = [name for m, name in evaluated if m == "l1"]
    assert max(i for i, n in enumerate(l1) if n.startswith("standard_at")) < min(
        i for i, n in enumerate(l1) if n.startswith("conv1_s2_at"))


def test_the_dose_response_reaches_towards_90_95_99_percent_zeros_at_conv1():
    commands = study.study_commands(study.CPU, study.DOSE_RESPONSE, study.DOSE_SEEDS)
    trained = {(v.method, v.layer, v.strength) for c in commands if c[2] == "train"
               for v in variants_from_args(parsed(c))}
    assert {("kwta", "conv1", 0.1), ("kwta", "conv1", 0.05), ("kwta", "conv1", 0.01)} <= trained  # 1 - gamma zeros
    assert {s for m, _, s in trained if m == "l1"} == {0.3, 1.0, 2.0, 3.0, 6.0}
    assert ("standard", None, 0.0) in trained


def test_the_design_prints_its_smallest_detectable_effect():
    text = study.design_text(study.CPU, (0.005, 5, "this study's"))
    assert "7 arms x 5 seeds (35 models)" in text
    effect = study.detectable_effect(5)
    assert f"{effect:.1f} seed SDs" in text and f"{effect * 0.005:.4f}" in text


def test_the_gpu_study_runs_on_the_cifar10_jpeg_copy_with_its_archive():
    setup = {**study.GPU, "dataset": "cifar10-jpeg", "data_dir": Path("/data/cifar10-jpeg.tar.gz")}
    for command in every_command(setup):
        args = parsed(command)
        assert args.dataset == "cifar10-jpeg"  # every mode names it: the GPU folders may hold both data sets
        if args.mode != "vis":
            assert args.data_dir == Path("/data/cifar10-jpeg.tar.gz")
        if args.mode == "train":
            assert recipe_from_args(args).dataset == "cifar10-jpeg"
        elif args.mode == "eval":
            assert eval_config_from_args(args, "cifar10-jpeg").eps == 8 / 255


def test_the_study_time_counts_each_model_of_the_design_once_though_the_baseline_sits_in_every_folder():
    """The first study's files: its baseline seeds 0-2 (a copy in each of its three method folders) and its dropout
    p=0.3 and k-WTA 0.1 arms at conv1 are models of the redone design; its other arms are not."""
    folder = ROOT / study.FIRST_STUDY / study.DATASET
    records = [r for method in ("l1", "dropout", "kwta") for r in load_records(folder / method, method)]
    in_design = [r for r in records if study.in_design(r.variant)]
    baseline_copies = [r for r in in_design if r.variant.is_baseline]
    assert len(baseline_copies) == 9 and len({r.checkpoint.sha256 for r in baseline_copies}) == 3
    assert not any(study.in_design(r.variant) for r in records if r.variant.strength in (0.6, 0.01))
    distinct = {r.checkpoint.sha256: r for r in in_design}
    models, training, evaluation = study.study_time(study.FIRST_STUDY)
    assert models == len(distinct) < len(in_design)
    assert training == pytest.approx(sum(r.checkpoint.metadata["train_seconds"] for r in distinct.values()))
    assert evaluation == pytest.approx(sum(sum(r.timings.values()) for r in distinct.values())) and evaluation > 0
    assert f"{models} of the design's 35 models evaluated" in study.time_text(study.FIRST_STUDY)


def test_each_evaluation_runs_after_the_same_seed_baselines_it_reads_so_two_can_run_at_once():
    steps = study.evaluation_steps(study.CPU)
    assert len(steps) == 7 * 5 + 2 * 5  # every arm and seed, and the baseline's copies in dropout/ and kwta/
    for i, step in enumerate(steps):
        args = parsed(step.command)
        assert args.threads == study.CPU["eval_threads"] and len(args.seeds) == 1
        assert all(j < i for j in step.after)  # listed in an order that also runs them one at a time
        needed = [parsed(steps[j].command) for j in step.after]
        assert all(n.seeds == args.seeds for n in needed)
        if args.baseline_only and args.adv_train is None:
            assert [n.method for n in needed] == ([] if args.method == "l1" else ["l1"])  # copies wait for it
        else:
            assert any(n.baseline_only and n.adv_train is None and n.method == args.method for n in needed)
        if args.layers and args.adv_train:  # the sparse arm on adversarial training: its reference, the control
            assert any(n.baseline_only and n.adv_train == args.adv_train for n in needed)


def test_parallel_steps_each_run_after_what_they_need_and_a_failure_stops_the_study(tmp_path):
    def python(code):
        return ["-c", code]

    first, stamp = tmp_path / "first", "import pathlib, time; time.sleep(0.5); pathlib.Path({!r}).write_text('x')"
    steps = [study.Step(python(stamp.format(str(first)))),
             study.Step(python(f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(first)!r}).exists() else 1)"),
                        (0,)),
             study.Step(python(stamp.format(str(tmp_path / "other"))))]
    study.run_steps(steps, 2, tmp_path / "logs")  # a step run before the one it needs would exit 1 and stop here
    assert first.exists() and (tmp_path / "other").exists()
    assert len(list((tmp_path / "logs").glob("eval-step*.log"))) == 3
    with pytest.raises(SystemExit) as stopped:
        study.run_steps([study.Step(python("import sys; print('broken'); sys.exit(3)"))] + steps[2:], 2,
                        tmp_path / "logs2")
    assert stopped.value.code == 3 and "broken" in (tmp_path / "logs2" / "eval-step000.log").read_text()


def test_a_bad_result_file_under_tables_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / study.DATASET / "l1"
    folder.mkdir(parents=True)
    (folder / "standard_seed0.json").write_text('{"format": "sparsity-robustness/result", "schema_version": 4}')
    monkeypatch.setitem(study.CPU, "results_dir", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        study.run_main(study.main, ["--tables"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "standard_seed0.json" in err[0] and "Traceback" not in err[0]


def test_the_verdict_table_without_study_results_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(study.CPU, "results_dir", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        study.run_main(study.main, ["--verdict-table"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err == [f"no study results in {tmp_path}/{study.DATASET}/; run python "
                                             f"experiments/fashion_mnist.py first"]


def test_the_dose_response_shares_the_study_folders_but_joins_no_arm_and_no_holm_family(tmp_path):
    """The dose-response writes into the study's method folders (its λ = 2 seed 0 is a design model); its other
    strengths must stay out of the design's tables and comparisons, where they would widen Holm's family, and its
    own table holds the dose models (seed 0) beside the baseline's design seeds."""
    from sparsity.variants import Variant
    from vis.study import accuracy_table, load_study_tables
    from vis_fixture import attack_entry, minimal_from, write_result

    results = tmp_path / "cifar10"  # the fixture's data set

    def write(variant, shift):
        write_result(results, "l1", variant, 0.9, {"conv1": 0.95}, {"autoattack": attack_entry("autoattack", 10, 9, 9)},
                     minimal={"linf": minimal_from([0.02 + shift + 0.001 * i for i in range(9)] + [0.0], 0.4)})

    for seed in study.CPU_SEEDS:
        write(Variant.baseline(seed), 0.001 * seed)
        write(Variant("l1", "conv1", 2.0, seed), 0.002 * seed)
    write(Variant("l1", "conv1", 1.0, 0), 0.01)
    write(Variant("l1", "conv1", 3.0, 0), 0.02)
    write(Variant("l1", "conv1", 2.0, 7), 0.03)  # a seed outside the design

    design = load_study_tables(tmp_path, "cifar10", ["l1"], study.design_of(study.CPU["results_dir"]))
    assert [(a.strength, a.seeds) for a in design.arms] == [(2.0, tuple(study.CPU_SEEDS))]
    arms = {row["arm"] for row in design.rows if not row["arm"].startswith("standard seeds")}
    assert arms == {"l1 conv1 λ=2"}  # Holm over the design's arms only
    everything = load_study_tables(tmp_path, "cifar10", ["l1"])
    assert len(everything.arms) == 3  # without the design, the dose models would be arms of their own

    dose = load_study_tables(tmp_path, "cifar10", ["l1"], study.in_dose_response)
    assert dose.baseline.seeds == tuple(study.CPU_SEEDS)
    assert [(a.strength, a.seeds) for a in dose.arms] == [(1.0, (0,)), (2.0, (0,)), (3.0, (0,))]
    table = "\n".join(accuracy_table(dose))
    assert "| standard | — | — | 0, 1, 2, 3, 4 |" in table and "| l1 | conv1 | λ=3 | 0 |" in table


def test_a_fresh_machine_continues_the_study_from_its_committed_records_without_redoing_them(tmp_path, monkeypatch):
    """Checkpoints are not committed: a session on a new machine has the records and no checkpoint. Every model
    with a record is kept (not retrained, not evaluated again), the baseline's kept record is copied into the
    folders that lack it, and only the standard models the k-WTA arm's transfer attack needs are trained again."""
    committed = ROOT / study.CPU["results_dir"] / study.DATASET
    for method in ("l1", "kwta"):  # as the study stood after the dose-response: the baseline and the seed-0 models
        (tmp_path / study.DATASET / method).mkdir(parents=True)
        for pattern in ("standard_seed*.json", "conv1_s*_seed0.json"):
            for path in (committed / method).glob(pattern):
                if "_at-" in path.name:  # L1 on adversarial training came later (its seed-0 record matches too)
                    continue
                (tmp_path / study.DATASET / method / path.name).write_bytes(path.read_bytes())
    setup = {**study.CPU, "results_dir": str(tmp_path)}
    kept = study.kept_records(setup)
    control, l1_conv1, kwta = study.ARMS[1], study.ARMS[2], study.ARMS[5]
    assert {(study.BASELINE, "l1", 0), (study.BASELINE, "kwta", 4), (l1_conv1, "l1", 0), (kwta, "kwta", 0)} <= kept
    assert not any(arm == control for arm, _, _ in kept)  # the dose-response's other strengths are not the design's

    kept = study.copy_kept_baselines(setup, study.ARMS, None, kept)
    copies = load_records(tmp_path / study.DATASET / "dropout", "dropout")
    originals = {r.variant.seed: r for r in load_records(tmp_path / study.DATASET / "l1", "l1") if r.variant.is_baseline}
    assert sorted(r.variant.seed for r in copies) == [0, 1, 2, 3, 4]
    assert all(r.checkpoint.sha256 == originals[r.variant.seed].checkpoint.sha256 and r.minimal == originals[
        r.variant.seed].minimal for r in copies)

    steps, done = study.study_steps(setup, kept=kept)
    trainings = [parsed(s.command) for s in steps if s.lane == "train"]
    trained = [(a.method, a.baseline_only, a.adv_train, a.layers, a.seeds[0]) for a in trainings]
    assert ("l1", False, None, ["conv1"], 0) not in trained and ("kwta", False, None, ["conv1"], 0) not in trained
    standard = [i for i, t in enumerate(trained) if t[1] and t[2] is None]
    first_kwta = next(i for i, t in enumerate(trained) if t[0] == "kwta")
    assert [trained[i][4] for i in standard] == [1, 2, 3, 4] and standard == list(range(first_kwta - 4, first_kwta))
    assert len(trained) == 35 - 7 + 4  # the design's models without a record, and the 4 surrogates
    evaluated = [i for i, s in enumerate(steps) if s.lane == "eval" and i not in done]
    assert {steps[i].model for i in done} == kept and len(evaluated) == 35 - 7
    for i in evaluated:
        args, own = parsed(steps[i].command), steps[steps[i].after[0]]
        assert own.lane == "train" and parsed(own.command).seeds == args.seeds
        assert not (args.baseline_only and args.adv_train is None)  # no standard model is evaluated again


def test_a_training_runs_alone_evaluations_in_pairs_and_kept_steps_never_run(tmp_path):
    times = tmp_path / "times"

    def timed(name, seconds=0.4):
        return ["-c", f"import time; s = time.time(); time.sleep({seconds}); "
                      f"open({str(times)!r}, 'a').write(f'{name} {{s}} {{time.time()}}\\n')"]

    steps = [study.Step(timed("train0"), lane="train"), study.Step(timed("train1"), lane="train"),
             study.Step(timed("eval0"), (0,)), study.Step(["-c", "import sys; sys.exit(1)"], (1,)),
             study.Step(timed("eval1"), (1, 3))]
    study.run_steps(steps, 2, tmp_path / "logs", done={3})
    spans = {name: (float(a), float(b)) for name, a, b in (line.split() for line in times.read_text().splitlines())}
    assert set(spans) == {"train0", "train1", "eval0", "eval1"}

    def overlap(a, b):
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    assert not any(overlap(t, other) for t in ("train0", "train1") for other in spans if other != t)
    assert spans["train1"][1] <= spans["eval0"][0] and overlap("eval0", "eval1")  # one ready evaluation waits for a pair
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["eval-step002.log", "eval-step004.log",
                                                                    "train-step000.log", "train-step001.log"]
    with pytest.raises(SystemExit, match="wait for steps that never run"):
        study.run_steps([study.Step(timed("never"), (5,))], 2, tmp_path / "logs3")
