"""python main.py --mode train: models in turn, skipping, divergence, and exit 2 on every bad input."""
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.datasets.utils

import common.device as device_module
from cli_support import assert_usage_error, run_cli
from main import build_parser, main
from models.spec import ModelSpec
from training import loop as train_module
from training import precision
from training.checkpoint import build_spec_model, load_checkpoint
from training.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
# Two classes, 32 training and 10 test images: every run here takes a second or two.
TINY = ["--classes", "0", "1", "--epochs", "1", "--batch-size", "16", "--train-per-class", "16",
        "--test-per-class", "5", "--device", "cpu"]


def run(argv, capsys):
    return run_cli(main, ["--mode", "train", *argv], capsys)


def test_diverged_model_is_recorded_and_the_run_goes_on_then_exits_non_zero(cifar_dir, tmp_path, capsys,
                                                                          monkeypatch):
    # A float32 overflow of the L1 term (1e39 * mean|a| = inf) is a real, deterministic divergence.
    # The other model starts with every fc2 unit dead (ReLU of a very negative bias gets no
    # gradient), so it ends collapsed: fc2 outputs only zeros.
    def build_with_dead_fc2(spec, input_shape, num_classes):
        model = build_spec_model(spec, input_shape, num_classes)
        if spec.strength == 0.5:
            torch.nn.init.constant_(model.fc2.bias, -1e4)
        return model

    monkeypatch.setattr(train_module, "build_spec_model", build_with_dead_fc2)
    argv = [*TINY, "--layers", "fc2", "--strengths", "1e39", "0.5", "--no-baseline",
            "--data-dir", str(cifar_dir), "--models-dir", str(tmp_path)]
    status, out, _ = run(argv, capsys)
    assert status == 1
    diverged = load_checkpoint(ModelSpec("l1", "fc2", 1e39, 0).checkpoint_path(tmp_path))["metadata"]
    collapsed = load_checkpoint(ModelSpec("l1", "fc2", 0.5, 0).checkpoint_path(tmp_path))["metadata"]
    assert (diverged["status"], diverged["diverged_in_epoch"]) == ("diverged", 1)
    assert (collapsed["status"], collapsed["collapsed"], collapsed["activation_sparsity"]["fc2"]) == ("complete", True, 1.0)
    assert "l1_fc2_s1e+39_seed0: DIVERGED (non-finite loss) in epoch 1" in out
    collapsed_line = next(line for line in out.splitlines() if line.startswith("l1_fc2_s0.5_seed0: trained"))
    assert "DID NOT LEARN" in collapsed_line and "COLLAPSED: fc2 outputs only zeros" in collapsed_line
    assert out.strip().splitlines()[-1].startswith(
        "plan: 1 of 2 tasks done, 0 done already, 1 failed (train cifar10/simple_cnn/l1_fc2_s1e+39_seed0)")

    # The same command again trains nothing: both are skipped, and the divergence is still reported.
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.pt")}
    status, out, _ = run(argv, capsys)
    assert "plan: 0 of 0 tasks done, 2 done already" in out
    assert status == 1
    assert "l1_fc2_s1e+39_seed0: DIVERGED" in out
    assert before == {path: path.read_bytes() for path in tmp_path.rglob("*.pt")}

    # Another recipe over these checkpoints is refused, and nothing is overwritten.
    status, _, err = run([*argv, "--lr", "0.1"], capsys)
    assert_usage_error(status, err, "different recipe", "lr: 0.01 -> 0.1", "--force", "--models-dir")
    assert before == {path: path.read_bytes() for path in tmp_path.rglob("*.pt")}


def test_threads_default_to_the_environments_then_to_the_cores_this_process_may_use(monkeypatch):
    """OMP_NUM_THREADS where set, then a Slurm task's SLURM_CPUS_PER_TASK; elsewhere the cores this process may run
    on (its affinity, not the machine's core count)."""
    monkeypatch.setattr(device_module.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    for value, threads in (("4", 4), ("", 3), ("0", 3), ("many", 3)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert device_module.default_threads() == threads
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")
    assert device_module.default_threads() == 6  # OMP_NUM_THREADS=many is no count: the Slurm task's CPUs
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert device_module.default_threads() == 4  # OMP_NUM_THREADS first
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert device_module.default_threads() == 6
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert device_module.default_threads() == 3


def test_native_bf16_flags_are_read_from_cpuinfo(tmp_path):
    """Reported by the benchmarks beside the measured choice; the choice itself never reads them."""
    for native_bf16 in (False, True):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f" + (" avx512_bf16" if native_bf16 else "")
                           + " fma\n")
        assert device_module.cpu_has_native_bf16(cpuinfo) is native_bf16
    assert device_module.cpu_has_native_bf16(tmp_path / "missing") is False


def machine_prefers(monkeypatch, tmp_path, fastest):
    """This machine's probe, forced: the candidate ``fastest`` (a key of precision.MODES) times 5x faster than
    the others, whatever the CPU; the suite's pin is lifted and the cache lives under ``tmp_path``. Returns the
    list of timed (amp, channels_last) steps."""
    monkeypatch.delenv(precision.PIN_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    steps = []

    def fake_step(network, optimizer, x, y, amp, device):
        mode = precision.TrainingMode(amp, x.is_contiguous(memory_format=torch.channels_last))
        steps.append(mode)
        return 0.01 if mode == precision.MODES[fastest] else 0.05

    monkeypatch.setattr(precision, "timed_step", fake_step)
    return steps


BF16_TINY = ["--baseline-only", "--train-per-class", "2", "--batch-size", "4"]  # bf16 is emulated on many CPUs


@pytest.mark.parametrize("fastest", ["fp32", "fp32-cl", "bf16-cl"])
def test_training_runs_in_the_measured_fastest_mode_and_flags_override_it(fastest, cifar_dir, tmp_path, capsys,
                                                                        monkeypatch):
    """The choice is printed once and recorded (the recipe's amp, the metadata's channels_last); the second run
    reads the cache instead of measuring; --amp/--no-amp and --channels-last/--no-channels-last override it."""
    steps = machine_prefers(monkeypatch, tmp_path, fastest)
    mode = precision.MODES[fastest]
    argv = [*TINY, *BF16_TINY, "--data-dir", str(cifar_dir)]

    def trained(models, *flags):
        status, out, _ = run([*argv, "--models-dir", str(tmp_path / models), *flags], capsys)
        assert status == 0
        metadata = load_checkpoint(ModelSpec.baseline_of(0).checkpoint_path(tmp_path / models))["metadata"]
        return precision.TrainingMode(metadata["recipe"]["amp"], metadata["channels_last"]), out

    chosen, out = trained("measured")
    assert chosen == mode and steps
    printed = [line for line in out.splitlines() if line.startswith("training precision:")]
    assert len(printed) == 1 and printed[0].startswith(f"training precision: {mode.name} (fastest here of 3, "
                                                       f"measured now")
    measured = len(steps)
    chosen, out = trained("cached")
    assert chosen == mode and len(steps) == measured and "cached in" in out

    flipped, out = trained("flipped", "--no-amp" if mode.amp else "--amp")
    assert flipped.amp is not mode.amp and len(steps) == measured
    # --no-amp: the faster fp32 candidate (fp32 when bf16 was fastest: the others tie and the first wins)
    assert flipped == (precision.BF16_CL if not mode.amp else precision.FP32)
    layout, _ = trained("layout", "--no-channels-last" if mode.channels_last else "--channels-last")
    assert layout.channels_last is not mode.channels_last
    given, out = trained("given", "--amp", "--no-channels-last")
    assert given == precision.BF16 and f"training precision: {precision.BF16.name} (as given" in out


@pytest.mark.parametrize("first, later", [("bf16-cl", "bf16-cl"), ("fp32-cl", "fp32")])
def test_an_interrupted_run_resumes_in_the_mode_it_began_with(first, later, cifar_dir, tmp_path, capsys,
                                                             monkeypatch):
    """The machine's choice forced each way, so a CPU without native bf16 still runs the bf16 branch: hints say
    the recorded precision, a resumed run keeps its checkpoint's memory layout even where the probe now picks
    another, and a checkpoint trained in bf16 is not continued in fp32."""
    machine_prefers(monkeypatch, tmp_path, first)
    argv = [*TINY, *BF16_TINY, "--epochs", "2", "--data-dir", str(cifar_dir), "--models-dir", str(tmp_path)]
    real_epoch, calls = train_module.train_epoch, []

    def interrupted_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", interrupted_epoch)
    assert run(argv, capsys)[0] == 130
    path = ModelSpec.baseline_of(0).checkpoint_path(tmp_path)
    partial = load_checkpoint(path)["metadata"]
    mode = precision.MODES[first]
    assert (partial["epochs_done"], partial["recipe"]["amp"], partial["channels_last"]) == (1, mode.amp,
                                                                                        mode.channels_last)
    hint = Recipe.from_stored(partial["recipe"]).train_command(ModelSpec.baseline_of(0), cifar_dir,
                                                               tmp_path, state_amp=True)
    assert ("--amp" if mode.amp else "--no-amp") in hint.split()

    monkeypatch.setattr(train_module, "train_epoch", real_epoch)
    machine_prefers(monkeypatch, tmp_path / "later", "fp32")  # the probe now picks fp32 contiguous
    if mode.amp:  # another precision is another recipe: refused, nothing overwritten
        before = path.read_bytes()
        status, _, err = run(argv, capsys)
        assert_usage_error(status, err, "different recipe", "amp: True -> False", "--force")
        assert path.read_bytes() == before
        argv.append("--amp")
    status, out, _ = run(argv, capsys)
    assert status == 0 and "resumed" in out
    metadata = load_checkpoint(path)["metadata"]
    assert (metadata["epochs_done"], metadata["recipe"]["amp"], metadata["channels_last"]) == (2, mode.amp,
                                                                                           mode.channels_last)
    if mode.channels_last != precision.MODES[later].channels_last:
        assert "resuming with channels_last True, the layout it began with" in out


@pytest.mark.parametrize("argv, fragments", [
    (["--layers", "conv9"], ["unknown layer 'conv9'", "conv1 conv2 conv3 conv4 fc1 fc2 fc3"]),
    (["--threads", "0"], ["--threads must be at least 1"]),
    (["--strength", "-1"], ["--strength (L1 strength λ) must be >= 0"]),
    (["--strength", "inf"], ["--strength must be a finite number"]),
    (["--dropout", "--strength", "1"], ["--strength (dropout probability p) must be in [0, 1)"]),
    (["--dropout", "--strengths", "0.2", "-0.1"], ["--strengths (dropout probability p) must be in [0, 1)"]),
    (["--classes", "1", "1"], ["--classes lists 1 more than once"]),
    (["--classes", "0", "10"], ["--classes has 10 out of range"]),
    (["--epochs", "0"], ["--epochs must be at least 1"]),
    (["--strength", "0.1", "--sweep"], ["not allowed with argument"]),
])
def test_bad_option_exits_2_with_one_line(argv, fragments, tmp_path, capsys):
    status, _, err = run([*TINY, "--data-dir", str(tmp_path), "--models-dir", str(tmp_path / "m"), *argv], capsys)
    assert_usage_error(status, err, *fragments)
    assert not (tmp_path / "m").exists()


def test_unwritable_models_dir_exits_2(cifar_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, _, err = run([*TINY, "--data-dir", str(cifar_dir), "--models-dir", str(blocker / "models")], capsys)
    assert_usage_error(status, err, "cannot create output directory", "--models-dir")


def test_missing_data_offline_exits_2_naming_the_archive(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    status, _, err = run([*TINY, "--data-dir", str(tmp_path / "nodata"), "--models-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, "cifar-10-python.tar.gz", "--data-dir")


@pytest.mark.parametrize("content, fragment", [
    (b"\x00garbage, not a zip archive", "is corrupt or not a checkpoint"),
    ("foreign", "is not a checkpoint of this project"),
])
def test_corrupt_or_foreign_checkpoint_exits_2_and_is_left_alone(content, fragment, cifar_dir, tmp_path, capsys):
    path = ModelSpec.baseline_of(0).checkpoint_path(tmp_path)
    path.parent.mkdir(parents=True)
    if content == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    status, _, err = run([*TINY, "--layers", "fc3", "--data-dir", str(cifar_dir), "--models-dir", str(tmp_path)], capsys)
    assert_usage_error(status, err, str(path), fragment, "--force")
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]  # nothing trained


@pytest.mark.parametrize("argv, fragment", [
    (["--mode", "attack"], "invalid choice: 'attack'"),
    (["--mode", "train", "--layers", "conv0"], "unknown layer 'conv0'"),
])
def test_command_line_exits_2_without_traceback(argv, fragment, tmp_path):
    result = subprocess.run([sys.executable, "main.py", *argv, "--models-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def help_flags(text):
    """The long options --help lists (each option line: its flags, then its help after two spaces)."""
    heads = re.findall(r"^  (-.*?)(?:  |$)", text, flags=re.MULTILINE)
    return {flag for head in heads for flag in re.findall(r"--[a-z][a-z-]*", head)}


@pytest.mark.parametrize("mode, theirs, others", [
    ("train", ["--epochs", "--adv-train", "--launcher", "--workers", "--print", "--data-dir"],
     ["--attacks", "--n-eval", "--results-dir"]),
    ("eval", ["--attacks", "--n-eval", "--audit-radii", "--results-dir", "--workers", "--print"],
     ["--epochs", "--lr", "--schedule"]),
    ("vis", ["--layers", "--results-dir"], ["--epochs", "--attacks", "--launcher", "--workers", "--print",
                                            "--data-dir", "--threads"]),
])
def test_a_modes_help_lists_only_the_options_that_mode_takes(mode, theirs, others, capsys):
    for argv in (["--mode", mode, "--help"], ["--help", f"--mode={mode}"]):
        status, out, _ = run_cli(main, argv, capsys)
        listed = help_flags(out)
        assert status == 0 and set(theirs) <= listed and not set(others) & listed, out
        assert f"Only the options of --mode {mode} are listed" in " ".join(out.split())
    # every option a mode's help lists is one that mode accepts, and nothing it accepts is missing from it
    parser = build_parser()
    accepted = {flag for flag, modes in parser.option_modes.items() if mode in modes}
    gated = set(parser.option_modes)
    everything = {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}
    assert listed == (everything - gated) | {flag for flag in accepted if flag.startswith("--")}
    status, out, _ = run_cli(main, ["--help"], capsys)  # without a mode: every option, and how to see fewer
    assert status == 0 and {*theirs, *others} <= help_flags(out)
    assert "--mode MODE --help lists only that mode's options" in " ".join(out.split())
