"""--mode vis: the figures and summary table of one method's results (vis names the eval command that makes the
results it finds missing)."""
from cli.run_options import chosen_dataset
from cli.specs import layers_from_args, method_from_args, validate_layers
from data.registry import get_dataset
from vis.report import make_figures


def run_vis(args, parser):
    method = method_from_args(args)
    layers = None if args.layers is None else validate_layers(layers_from_args(args))
    dataset = chosen_dataset(args, args.results_dir, "results")
    written = make_figures(args.results_dir, dataset, method, layers, include_baseline=not args.no_baseline)
    folder = written[0].parent if written else args.results_dir
    print(f"vis: wrote {len(written)} files to {folder} ({get_dataset(dataset).title}): "
          + ", ".join(sorted({path.stem for path in written})))
    return 0
