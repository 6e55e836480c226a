"""--mode vis: the figures and summary table of one method's results, and the eval command that makes results vis
finds missing."""
from pathlib import Path

from cli.run_options import DEFAULT_DIRS, chosen_dataset
from cli.variants import layers_from_args, method_from_args
from data.registry import DEFAULT_DATASET, dataset_folder, get_dataset
from models import layer_names
from sparsity.methods import DEFAULT_METHOD
from sparsity.variants import validate_layers
from vis.report import make_figures


def eval_hint(method, layers, results_dir, dataset):
    """The eval command that produces results vis is missing (``layers`` None: the default ones)."""
    parts = ["python main.py --mode eval"]
    if dataset != DEFAULT_DATASET:
        parts.append(f"--dataset {dataset}")
    if method != DEFAULT_METHOD:
        parts.append(f"--method {method}")
    if layers is not None and tuple(layers) != tuple(layer_names()):
        parts.append("--layers " + " ".join(layers))
    if Path(results_dir).resolve() != DEFAULT_DIRS["results_dir"].resolve():
        parts.append(f"--results-dir {results_dir}")
    return " ".join(parts)


def run_vis(args, parser):
    method = method_from_args(args)
    layers = None if args.layers is None else validate_layers(layers_from_args(args))
    dataset = chosen_dataset(args, args.results_dir, lambda folder: any((folder / method).glob("*.json")),
                             f"{method} results")
    results_dir = dataset_folder(args.results_dir, dataset)
    written = make_figures(results_dir, method, layers, include_baseline=not args.no_baseline,
                           eval_hint=lambda method, layers: eval_hint(method, layers, args.results_dir, dataset),
                           dataset=dataset)
    print(f"vis: wrote {len(written)} files to {results_dir / method} ({get_dataset(dataset).title}): "
          + ", ".join(sorted({path.stem for path in written})))
    return 0
