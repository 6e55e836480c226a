"""The options of where a command runs: the data set, the folders it reads and writes, the device and threads,
--quick and --force; and the data set a command acts on where --dataset is not given."""
from pathlib import Path

from cli import EVAL, ROOT, TRAIN, VIS
from common.device import DEVICE_CHOICES
from common.errors import UsageError
from data.registry import DATASETS, DEFAULT_DATASET
from models import DEFAULT_MODEL, MODELS
from evaluation.config import quick_preset as eval_quick
from training.recipe import QUICK as TRAIN_QUICK
from training.recipe import QUICK_STEPS


def add_run_options(parser):
    group = parser.add_argument_group("data, files and device")
    group.add_argument("--dataset", choices=list(DATASETS), default=None,
                       help=f"train: the data set (default {DEFAULT_DATASET}); eval and vis read it from the "
                            f"checkpoints and results, and need it only to choose when the folders hold several")
    parser.add_mode_options(group, (TRAIN, EVAL), "--model", choices=list(MODELS), default=None,
                            help=f"train: the architecture, from the model registry (default {DEFAULT_MODEL}); eval "
                                 f"reads it from the checkpoints' folders, and needs it only to choose when several "
                                 f"hold checkpoints")
    parser.add_mode_options(group, (TRAIN, EVAL), "--device", choices=DEVICE_CHOICES, default="auto",
                            help="auto: cuda, then mps, then cpu")
    parser.add_mode_options(group, (TRAIN, EVAL), "--threads", type=int,
                            help="torch CPU threads (default: the cores this process may use: OMP_NUM_THREADS, or a "
                                 "Slurm task's CPUs, where set; pass 1 on a small machine that other work shares, "
                                 "where a second thread waits for the busy core)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--data-dir", type=Path, default=ROOT / "datasets",
                            help="the data sets' files (default datasets/): cifar-10-batches-py/ or "
                                 "cifar-10-python.tar.gz; Fashion-MNIST's and MNIST's idx files in fashion-mnist/ "
                                 "and mnist/ (Fashion-MNIST also from /usr/share/datasets/fashion-mnist/); "
                                 "cifar10-jpeg: its archive itself, or a folder with train/<class>/ and test/<class>/")
    parser.add_mode_options(group, (TRAIN, EVAL), "--models-dir", type=Path, default=ROOT / "trained-models",
                            help="checkpoints, one folder per data set (default trained-models/)")
    parser.add_mode_options(group, (EVAL, VIS), "--results-dir", type=Path, default=ROOT / "results",
                            help="results, one folder per data set (default results/)")
    parser.add_mode_options(group, (TRAIN, EVAL), "--quick", action="store_true",
                            help=f"CPU-sized presets to run the pipeline end to end in minutes, not for findings "
                                 f"(training: {TRAIN_QUICK} and at least {QUICK_STEPS} SGD steps; eval: "
                                 f"{eval_quick()}); flags override them")
    parser.add_mode_options(group, (TRAIN, EVAL), "--force", action="store_true",
                            help="redo variants that already have a checkpoint (train) or an up-to-date result (eval)")


def chosen_dataset(args, root, what):
    """--dataset, else the one data set whose folder under ``root`` holds ``what`` ("checkpoints" or "results": files
    in ``{root}/{dataset}/{model}/``; the default data set when none does); a UsageError when several do."""
    if args.dataset:
        return args.dataset
    suffix = ".pt" if what == "checkpoints" else ".json"
    found = [name for name in DATASETS if any((Path(root) / name).glob(f"*/*{suffix}"))]
    if len(found) > 1:
        raise UsageError(f"{root} holds {what} of several data sets ({', '.join(found)}); choose one with "
                         f"--dataset {found[0]}")
    return found[0] if found else DEFAULT_DATASET


def chosen_model(args, root, dataset):
    """--model, else the one model whose folder ``{root}/{dataset}/{model}/`` holds checkpoints (the default model
    when none does); a UsageError when several do."""
    if args.model:
        return args.model
    found = [name for name in MODELS if any((Path(root) / dataset / name).glob("*.pt"))]
    if len(found) > 1:
        raise UsageError(f"{Path(root) / dataset} holds checkpoints of several models ({', '.join(found)}); choose "
                         f"one with --model {found[0]}")
    return found[0] if found else DEFAULT_MODEL
