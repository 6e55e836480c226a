"""MNIST: 60,000 training and 10,000 test 28x28 grey images of handwritten digits, 10 classes."""
from data.idx import IdxSource, idx_dataset

FILES = IdxSource(title="MNIST", image_size=(28, 28), num_classes=10, torchvision_folder="MNIST", folder="mnist")
CLASS_NAMES = tuple(str(digit) for digit in range(10))


MNIST = idx_dataset(
    FILES, "mnist", CLASS_NAMES, eps=0.3, step=0.01, eps_sweep=(0.05, 0.1, 0.2, 0.3, 0.4),
    augment="crop", augment_reason="a mirrored 2, 3, 4, 5, 7 or 9 is not a digit (pad-and-crop only)")
