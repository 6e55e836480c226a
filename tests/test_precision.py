"""training.precision: the measured choice of precision and memory layout, its cache, its pin; a fake clock."""
import json

import pytest
import torch

from cli_support import assert_usage_error, run_cli
from common.errors import ConfigError
from main import main
from models import DEFAULT_MODEL
from training import precision

SHAPE = (3, 32, 32)


@pytest.fixture
def probe(monkeypatch, tmp_path):
    """Unpinned, with a cache under ``tmp_path`` and a fake clock: each candidate's step takes ``seconds[key]``;
    ``timed`` lists the candidates stepped."""
    monkeypatch.delenv(precision.PIN_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    seconds = {"fp32": 0.02, "fp32-cl": 0.01, "bf16-cl": 0.2}
    timed = []

    def fake_step(network, optimizer, x, y, amp, device):
        key = precision.TrainingMode(amp, x.is_contiguous(memory_format=torch.channels_last)).key
        timed.append(key)
        return seconds[key]

    monkeypatch.setattr(precision, "timed_step", fake_step)
    return seconds, timed


def choose(**options):
    return precision.choose_training_mode("cpu", DEFAULT_MODEL, SHAPE, 10, **options)


def test_the_fastest_candidate_is_chosen_and_cached_under_xdg_cache_home(probe, tmp_path):
    seconds, timed = probe
    choice = choose()
    assert choice.mode == precision.FP32_CL and choice.images_per_second["fp32-cl"] == pytest.approx(1600)
    assert "measured now" in choice.how and "fp32 + channels_last 1600" in choice.line()
    # a 10x slower candidate is rated by its warm-up step alone; the others get a warm-up and three timed steps
    assert timed.count("fp32") == timed.count("fp32-cl") == 4 and timed.count("bf16-cl") == 1
    path = tmp_path / "xdg" / "sparsity-robustness" / "training-mode.json"
    assert precision.cache_file() == path
    entries = json.loads(path.read_text())["entries"]
    assert list(entries) == [precision.cache_key(torch.device("cpu"), DEFAULT_MODEL, SHAPE)]
    assert not list(path.parent.glob(".*.tmp"))

    timed.clear()
    seconds["fp32"] = 0.001  # the cache is read, not remeasured: the choice stays
    again = choose()
    assert again.mode == precision.FP32_CL and "cached in" in again.how and timed == []
    # with one setting given, the fastest of the candidates that agree with it; alone, no measuring at all
    assert choose(amp=True).mode == precision.BF16_CL
    assert choose(channels_last=False).mode == precision.FP32
    assert choose(amp=False).mode == precision.FP32_CL and timed == []
    assert choose(amp=True, channels_last=False).mode == precision.BF16
    # another input shape (or model, torch, threads, CPU) is another entry, measured once
    other = precision.choose_training_mode("cpu", DEFAULT_MODEL, (1, 28, 28), 10)
    assert other.mode == precision.FP32 and timed and len(json.loads(path.read_text())["entries"]) == 2


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other", "entries": {}}), json.dumps([1]),
                                     "bad entry"])
def test_a_missing_or_corrupt_cache_is_rebuilt(content, probe, tmp_path):
    seconds, timed = probe
    path = precision.cache_file()
    path.parent.mkdir(parents=True)
    if content == "bad entry":
        key = precision.cache_key(torch.device("cpu"), DEFAULT_MODEL, SHAPE)
        content = json.dumps({"format": precision.CACHE_FORMAT, "entries": {key: {"fp32": -1.0}}})
    path.write_text(content)
    assert choose().mode == precision.FP32_CL and timed
    assert precision.valid_speeds(next(iter(json.loads(path.read_text())["entries"].values())))


def test_an_unwritable_cache_warns_and_the_choice_holds(probe, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="cache was not saved"):
        choice = precision.choose_training_mode("cpu", DEFAULT_MODEL, SHAPE, 10, cache_dir=blocker / "cache")
    assert choice.mode == precision.FP32_CL and "measured now, not saved" in choice.how


def test_the_probe_leaves_torchs_random_state_as_it_was(probe):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    choose()
    assert torch.equal(torch.rand(3), expected)


def test_unmeasured_devices_and_submissions_take_the_device_default(probe, monkeypatch):
    _, timed = probe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.choose_training_mode("cuda", DEFAULT_MODEL, SHAPE, 10).mode == precision.BF16_CL
    assert precision.choose_training_mode("cuda", DEFAULT_MODEL, SHAPE, 10, amp=False).mode == precision.FP32
    assert choose(measure=False).mode == precision.FP32
    assert choose(measure=False, channels_last=True).mode == precision.FP32_CL
    assert timed == []


def test_the_pin_sets_what_flags_leave_open_and_a_bad_pin_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(precision.PIN_ENV, "bf16-cl")
    assert choose().mode == precision.BF16_CL and "pinned by" in choose().how
    assert choose(amp=False).mode == precision.FP32_CL
    monkeypatch.setenv(precision.PIN_ENV, "fast")
    with pytest.raises(ConfigError):
        choose()
    status, _, err = run_cli(main, ["--mode", "train", "--baseline-only", "--device", "cpu", "--data-dir",
                                    str(tmp_path), "--models-dir", str(tmp_path / "m")], capsys)
    assert_usage_error(status, err, f"{precision.PIN_ENV} (environment) is 'fast'", "fp32, fp32-cl, bf16, bf16-cl")
    assert not (tmp_path / "m").exists()
