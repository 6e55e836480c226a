"""Class subsets and balanced subsets of any registered data set, and its test images as models take them."""
import torch

from common import validation
from common.errors import ConfigError
from data.registry import get_dataset


def validate_classes(classes, dataset):
    """Check a ``--classes`` list of ``dataset`` (a registry name; None = every class) and return it as ints."""
    dataset = get_dataset(dataset)
    count = dataset.num_classes
    if classes is None:
        return list(range(count))
    classes = [validation.integer(c, "classes") for c in classes]
    out_of_range = [c for c in classes if not 0 <= c < count]
    if out_of_range:
        raise ConfigError("classes", f"has {' '.join(map(str, out_of_range))} out of range; {dataset.title} class "
                                     f"indices are 0..{count - 1}")
    validation.distinct(classes, "classes")
    if len(classes) < 2:
        raise ConfigError("classes", f"needs at least two classes to classify, got {len(classes)}; e.g. 0 1 8 9")
    return classes


def select_classes(x, y, classes, num_classes):
    """Keep the samples of ``classes`` (indices below ``num_classes``) and relabel them 0..k-1 in the order given;
    sample order is kept."""
    new_label = torch.full((num_classes,), -1, dtype=torch.int64, device=y.device)
    new_label[torch.tensor(list(classes), device=y.device)] = torch.arange(len(classes), device=y.device)
    keep = new_label[y] >= 0
    return x[keep], new_label[y[keep]]


def first_per_class(x, y, per_class):
    """The first ``per_class`` samples of every class, in data set order (a balanced, deterministic subset)."""
    keep = torch.zeros(len(y), dtype=torch.bool)
    for label in y.unique():
        keep[(y == label).nonzero().squeeze(1)[:per_class]] = True
    return x[keep], y[keep]


def load_test_images(dataset, data_dir, classes=None):
    """The test images of ``dataset`` restricted to ``classes`` (relabelled 0..k-1 in that order; default all) as
    float32 in [0, 1], (N, C, H, W), with int64 labels: what a model and the attacks take."""
    record = get_dataset(dataset)
    classes = validate_classes(classes, dataset)
    data = record.read(data_dir, True)
    x, y = select_classes(data.test_x, data.test_y, classes, record.num_classes)
    return x.float().div_(255), y
