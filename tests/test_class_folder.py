"""Class-folder data sets (data/class_folder.py) on generated folders and archives: the same images from either,
the decode cache (beside the data, or in the user's cache when the data folder is read-only; redone when the
source changes), exit 2 naming the folder or file for every bad input, and cifar10-jpeg never mixed with cifar10.
The real CIFAR-10 JPEG copy is in test_real_cifar10_jpeg.py."""
import os
import shutil

import numpy as np
import pytest
import torch

import data.class_folder as class_folder
import data.files as data_files
from class_folder_fixture import encode, make_archive, make_class_folders
from cli_support import assert_usage_error, run_cli
from common.errors import FileProblem
from data.registry import get_dataset
from main import main
from models.spec import ModelSpec

CIFAR10_JPEG = get_dataset("cifar10-jpeg")
TRAIN = ["--mode", "train", "--baseline-only", "--classes", "0", "1", "--epochs", "1", "--batch-size", "4",
         "--device", "cpu"]
EVAL = ["--mode", "eval", "--audit-radii", "none", "--baseline-only", "--device", "cpu", "--attacks", "pgd", "--n-eval", "4", "--steps", "2",
        "--check-n", "4", "--minimal-norms", "none"]


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """A user cache of this test's own, and no decoded data set carried over from another test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(data_files, "_decoded", {})
    return tmp_path / "user-cache" / "sparsity-robustness" / "class-folders"


def read(path):
    data_files._decoded.clear()  # read from the files (or the cache file), not this process's copy
    return CIFAR10_JPEG.read(path)


def test_the_record_is_cifar10s_protocol_under_its_own_name():
    cifar = get_dataset("cifar10")
    assert CIFAR10_JPEG.name == "cifar10-jpeg" and "JPEG" in CIFAR10_JPEG.title
    assert CIFAR10_JPEG.class_names == cifar.class_names and CIFAR10_JPEG.input_shape == (3, 32, 32)
    assert (CIFAR10_JPEG.eps, CIFAR10_JPEG.step, CIFAR10_JPEG.format_eps(CIFAR10_JPEG.eps)) == (8 / 255, 1 / 255,
                                                                                                "8/255")
    assert CIFAR10_JPEG.augment == "standard" and CIFAR10_JPEG.eps_sweep == cifar.eps_sweep
    with pytest.raises(ValueError, match="sorted"):
        class_folder.ClassFolders("x", "X", ("dog", "cat"), (3, 32, 32))


def test_a_new_class_folder_data_set_is_one_record(tmp_path):
    pets = class_folder.class_folder_dataset(
        "pets", "Pets", ("cat", "dog"), (1, 32, 32), eps=0.1, step=0.01, eps_sweep=(0.1,), eps_denominator=None,
        augment="standard", augment_reason="a mirrored pet is one", train_per_class=2)
    folder, written = make_class_folders(tmp_path / "pets", n_train_per_class=2, n_test_per_class=1)
    for name in set(CIFAR10_JPEG.class_names) - {"cat", "dog"}:
        for split in ("train", "test"):
            shutil.rmtree(folder / split / name)
    data = pets.read(tmp_path)  # finds pets/ in the --data-dir
    assert data.train_x.shape == (4, 1, 32, 32) and data.train_y.tolist() == [0, 0, 1, 1]
    assert data.classes == ["cat", "dog"] and "train/<class>/" in pets.source


def test_a_folder_and_its_archives_read_the_same_images_in_imagefolder_order(tmp_path):
    folder, written = make_class_folders(tmp_path / "cifar10-jpeg")
    for source in (folder, make_archive(folder, tmp_path / "a.tar.gz"), make_archive(folder, tmp_path / "a.tar"),
                   tmp_path):  # a --data-dir holding cifar10-jpeg/
        data = read(source)
        for split in ("train", "test"):
            images, labels = written[split]
            assert torch.equal(getattr(data, f"{split}_x"), torch.from_numpy(images)), source
            assert getattr(data, f"{split}_y").tolist() == labels.tolist()
        assert data.train_x.dtype == torch.uint8 and data.classes == list(CIFAR10_JPEG.class_names)


def test_an_archive_with_one_enclosing_folder_and_stray_files_reads_as_imagefolder_does(tmp_path):
    folder, written = make_class_folders(tmp_path / "src" / "cifar10-jpeg", n_train_per_class=2, n_test_per_class=1)
    (folder / "README.md").write_text("stray")
    (folder / "train" / "cat" / "notes.txt").write_text("not an image")
    (folder / "train" / "cat" / ".hidden.jpg").write_bytes(b"editor junk")
    archive = tmp_path / "wrapped.tar.gz"
    import tarfile
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar10-jpeg")
    data = read(archive)
    assert torch.equal(data.train_x, torch.from_numpy(written["train"][0]))


def test_jpegs_are_decoded_as_pil_decodes_them(tmp_path):
    from PIL import Image
    folder, _ = make_class_folders(tmp_path / "jpeg", n_train_per_class=2, n_test_per_class=1, fmt="JPEG")
    data = read(folder)
    path = folder / "train" / "bird" / "0001.jpeg"
    expected = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
    assert torch.equal(data.train_x[2 * 2 + 1], torch.from_numpy(expected.copy()))


def test_the_decoded_copy_is_cached_beside_the_data_and_redone_when_the_source_changes(tmp_path, user_cache):
    folder, written = make_class_folders(tmp_path / "data" / "cifar10-jpeg", n_train_per_class=2,
                                         n_test_per_class=1)
    archive = make_archive(folder, tmp_path / "data" / "cifar10-jpeg.tar.gz")
    first = read(archive)
    cache = tmp_path / "data" / "cifar10-jpeg.tar.gz.decoded.pt"
    assert cache.is_file() and not user_cache.exists()
    stored = torch.load(cache, weights_only=True)
    assert stored["dataset"] == "cifar10-jpeg" and stored["fingerprint"].startswith("sha256:")
    # the second read is the cache's: it holds what the cache file holds, even where the pixels were edited in it
    stored["train_x"][0] = 7
    torch.save(stored, cache)
    assert read(archive).train_x[0].eq(7).all()
    # a changed archive (one image replaced) is decoded again, and the cache replaced
    (folder / "train" / "airplane" / "0000.png").write_bytes(encode(np.zeros((3, 32, 32), np.uint8), "PNG"))
    make_archive(folder, archive)
    again = read(archive)
    assert again.train_x[0].sum() == 0 and torch.equal(again.train_x[1:], first.train_x[1:])
    assert torch.load(cache, weights_only=True)["train_x"][0].sum() == 0
    # a damaged cache file is only a cache: decoded again
    cache.write_bytes(b"not a torch file")
    assert torch.equal(read(archive).train_x, again.train_x)


def test_a_read_only_data_folder_is_cached_in_the_users_cache(tmp_path, user_cache):
    folder, written = make_class_folders(tmp_path / "shared" / "cifar10-jpeg", n_train_per_class=2,
                                         n_test_per_class=1)
    os.chmod(tmp_path / "shared", 0o555)
    try:
        data = read(folder)
        assert not (tmp_path / "shared" / "cifar10-jpeg.decoded.pt").exists()
        assert len(list(user_cache.glob("cifar10-jpeg-*.decoded.pt"))) == 1
        assert torch.equal(read(folder).test_x, data.test_x)
    finally:
        os.chmod(tmp_path / "shared", 0o755)


# --- bad input: exit 2, one line naming the folder or file, before any training ---------------------------

def _without(folder, relative):
    shutil.rmtree(folder / relative)


def _extra_class(folder, _):
    shutil.copytree(folder / "train" / "cat", folder / "train" / "zebra")


def _undecodable(folder, _):
    (folder / "test" / "dog" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")


def _truncated_jpeg(folder, _):
    good = encode(np.full((3, 32, 32), 128, np.uint8), "JPEG")
    (folder / "test" / "dog" / "0001.png").unlink()
    (folder / "test" / "dog" / "0001.jpg").write_bytes(good[:len(good) // 2])


def _wrong_size(folder, _):
    (folder / "train" / "frog" / "0000.png").write_bytes(encode(np.zeros((3, 28, 30), np.uint8), "PNG"))


@pytest.mark.parametrize("archive", [False, True], ids=["folder", "tar.gz"])
@pytest.mark.parametrize("damage, relative, fragments", [
    (_without, "train", ["has no train/ folder"]),
    (_without, "test/cat", ["test/ has no cat/ folder", "one folder per class"]),
    (_extra_class, None, ["train/zebra is not a class of CIFAR-10 (JPEG copy)"]),
    (_undecodable, None, ["test/dog/0001.png is not a readable image"]),
    (_truncated_jpeg, None, ["test/dog/0001.jpg is not a readable image", "truncated"]),
    (_wrong_size, None, ["train/frog/0000.png is 30x28 pixels", "images are 32x32"]),
], ids=["no-train", "missing-class", "extra-class", "undecodable", "truncated-jpeg", "wrong-size"])
def test_bad_class_folders_exit_2_naming_the_folder_or_file(tmp_path, capsys, archive, damage, relative, fragments):
    folder, _ = make_class_folders(tmp_path / "cifar10-jpeg", n_train_per_class=2, n_test_per_class=2)
    damage(folder, relative)
    source = make_archive(folder, tmp_path / "c.tar.gz") if archive else folder
    models = tmp_path / "models"
    status, _, err = run_cli(main, [*TRAIN, "--dataset", "cifar10-jpeg", "--data-dir", str(source),
                                    "--models-dir", str(models)], capsys)
    assert_usage_error(status, err, str(source), *fragments, "--data-dir")
    assert not list(models.rglob("*.pt"))


@pytest.mark.parametrize("make, fragments", [
    (lambda tmp: tmp, ["has no train/ or test/ folder (nor cifar10-jpeg/ or cifar10-jpeg.tar.gz)"]),
    (lambda tmp: tmp / "absent", ["CIFAR-10 (JPEG copy) is not at", "no such file or folder"]),
    (lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("x"))[0], ["is not a .tar or .tar.gz archive"]),
    (lambda tmp: (tmp / "c.tar.gz", (tmp / "c.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated"))[0],
     ["cannot read the archive", "replace it with an intact copy"]),
], ids=["empty-folder", "missing", "not-an-archive", "damaged-archive"])
def test_a_data_dir_without_the_data_set_exits_2_naming_it(tmp_path, capsys, make, fragments):
    source = make(tmp_path)
    status, _, err = run_cli(main, [*TRAIN, "--dataset", "cifar10-jpeg", "--data-dir", str(source),
                                    "--models-dir", str(tmp_path / "models")], capsys)
    assert_usage_error(status, err, str(source), *fragments, "--data-dir")


def test_reading_a_bad_folder_raises_file_problem_in_the_library(tmp_path):
    folder, _ = make_class_folders(tmp_path / "x", n_train_per_class=1, n_test_per_class=1)
    _without(folder, "test")
    with pytest.raises(FileProblem, match="has no test/ folder"):
        read(folder)


# --- identity: cifar10-jpeg and cifar10 are never mixed -------------------------------------------------

def test_checkpoints_of_cifar10_and_cifar10_jpeg_are_never_evaluated_as_each_other(tmp_path, capsys, cifar_dir):
    folder, _ = make_class_folders(tmp_path / "jpeg", n_train_per_class=4, n_test_per_class=2)
    models = tmp_path / "models"
    for dataset, data_dir in (("cifar10-jpeg", folder), ("cifar10", cifar_dir)):
        status, out, err = run_cli(main, [*TRAIN, "--dataset", dataset, "--data-dir", str(data_dir),
                                          "--models-dir", str(models)], capsys)
        assert status == 0, err
    jpeg, cifar = (ModelSpec.baseline_of(0, dataset=name).checkpoint_path(models) for name in ("cifar10-jpeg", "cifar10"))
    assert torch.load(jpeg, weights_only=True)["metadata"]["recipe"]["dataset"] == "cifar10-jpeg"
    swapped = tmp_path / "swapped"
    for dataset, source in (("cifar10", jpeg), ("cifar10-jpeg", cifar)):
        ModelSpec.baseline_of(0, dataset=dataset).checkpoint_path(swapped).parent.mkdir(parents=True)
        shutil.copy(source, ModelSpec.baseline_of(0, dataset=dataset).checkpoint_path(swapped))
    for dataset, data_dir, fragments in (
            ("cifar10-jpeg", folder, ["holds standard_seed0 of cifar10 (simple_cnn), not standard_seed0 of cifar10-jpeg"]),
            ("cifar10", cifar_dir, ["holds standard_seed0 of cifar10-jpeg (simple_cnn), not standard_seed0 of cifar10 "])):
        status, _, err = run_cli(main, [*EVAL, "--dataset", dataset, "--data-dir", str(data_dir), "--models-dir",
                                        str(swapped), "--results-dir", str(tmp_path / "results")], capsys)
        assert_usage_error(status, err, str(ModelSpec.baseline_of(0, dataset=dataset).checkpoint_path(swapped)),
                           *fragments)
    assert not list((tmp_path / "results").rglob("*.json"))
