"""--mode vis: the figures and summary table of one method's results (vis names the eval command that makes the
results it finds missing)."""
from cli.run_options import chosen_dataset
from cli.variants import layers_from_args, method_from_args
from data.registry import dataset_folder, get_dataset
from sparsity.variants import validate_layers
from vis.report import make_figures


def run_vis(args, parser):
    method = method_from_args(args)
    layers = None if args.layers is None else validate_layers(layers_from_args(args))
    dataset = chosen_dataset(args, args.results_dir, lambda folder: any((folder / method).glob("*.json")),
                             f"{method} results")
    results_dir = dataset_folder(args.results_dir, dataset)
    written = make_figures(results_dir, method, layers, include_baseline=not args.no_baseline, dataset=dataset)
    print(f"vis: wrote {len(written)} files to {results_dir / method} ({get_dataset(dataset).title}): "
          + ", ".join(sorted({path.stem for path in written})))
    return 0
