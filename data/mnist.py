"""MNIST: 60,000 training and 10,000 test 28x28 grey images of handwritten digits, 10 classes."""
from data.dataset import Dataset
from data.idx import IdxSource, idx_reader

FILES = IdxSource(
    title="MNIST",
    image_size=(28, 28),
    num_classes=10,
    torchvision_folder="MNIST",
    folder="mnist",
)
CLASS_NAMES = tuple(str(digit) for digit in range(10))


load_mnist = idx_reader(FILES, CLASS_NAMES)  # Fashion-MNIST's official files (the same names) are refused


MNIST = Dataset(
    name="mnist",
    title="MNIST",
    input_shape=(1, 28, 28),
    class_names=CLASS_NAMES,
    source=("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz (or unpacked) in --data-dir, its mnist/ or MNIST/raw/ folder; downloaded "
            "with torchvision's MD5 check when missing and online"),
    eps=0.3,
    step=0.01,
    eps_sweep=(0.05, 0.1, 0.2, 0.3, 0.4),
    eps_denominator=None,
    augment="crop",
    augment_reason="a mirrored 2, 3, 4, 5, 7 or 9 is not a digit (pad-and-crop only)",
    train_per_class=6000,
    read=load_mnist,
)
