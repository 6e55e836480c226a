"""Training throughput of SimpleCNN, batch 128, in images/s, in one run:

(a) the project's loop: TensorLoader feeding training.loop.train_epoch; (b) compute only: train_step on pre-made
tensors on the device (the limit); (c) reference: torchvision.transforms on PIL images through a DataLoader, as
torchvision's CIFAR10 does; all in the training default (training.precision's cached probe; --remeasure, --amp and
--channels-last as in training); then each candidate of the probe, compute only; with --compile, (f): (b) through
torch.compile, and on CUDA (g): (b) without cuDNN autotuning. Data: random uint8 of CIFAR shape. The targets are
printed beside each ratio; (f)/(b) and (b)/(g) are measured on a GPU by bench/gpu_check.sh.

    python bench/train_throughput.py [--images N] [--repeats R] [--device auto] [--workers W] [--threads T]
                                     [--amp/--no-amp] [--channels-last/--no-channels-last] [--remeasure] [--compile]
"""
import argparse

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from timing import best_rates, fresh_training, load_average, random_data, step_loop  # first: puts the repository
# on sys.path
from common.device import DEVICE_CHOICES, cpu_has_native_bf16, resolve_device
from data.loader import TensorLoader
from models.spec import ModelSpec
from training.loop import cudnn_benchmark, train_epoch, train_step
from training.precision import CANDIDATES, choose_training_mode, hardware_name

BATCH = 128
CIFAR_TRAIN_SIZE = 50_000
VARIANT = ModelSpec.baseline_of(0)
SHAPE = (3, 32, 32)


class PilCifar(Dataset):
    """What torchvision.datasets.CIFAR10 does per item: HWC uint8 -> PIL image -> transform."""

    def __init__(self, images_hwc, labels, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def project_loop(x_uint8, y, device, amp, channels_last, compile):
    model, optimizer, objective = fresh_training(VARIANT, SHAPE, device, channels_last, compile)
    loader = TensorLoader(x_uint8, y, BATCH, shuffle=True, augment="standard", device=device, seed=0,
                          channels_last=channels_last)
    return lambda: train_epoch(model, optimizer, loader, objective, amp)


def compute_only(x_uint8, y, device, amp, channels_last, compile=False):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    batches = [(x_uint8[i:i + BATCH].to(device).float().div(255).contiguous(memory_format=layout),
                y[i:i + BATCH].to(device)) for i in range(0, len(y), BATCH)]
    return step_loop(fresh_training(VARIANT, SHAPE, device, channels_last, compile), batches, amp=amp)


def torchvision_reference(x_uint8, y, device, amp, channels_last, workers):
    model, optimizer, objective = fresh_training(VARIANT, SHAPE, device, channels_last)
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor()])
    dataset = PilCifar(x_uint8.permute(0, 2, 3, 1).numpy(), y.numpy(), transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)

    def run():
        model.train()
        for x, target in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            train_step(model, optimizer, x, target.to(device, non_blocking=True), objective, amp)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--images", type=int, help="images per timed pass (default: 2048 on CPU, 50000 on CUDA)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per loop; the best is reported")
    parser.add_argument("--workers", type=int, help="DataLoader workers of (c) (default: 0 on CPU, 8 on CUDA)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction,
                        help="bf16 autocast in (a)-(c) (default: the training default, measured)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="channels_last in (a)-(c) (default: the training default, measured)")
    parser.add_argument("--remeasure", action="store_true",
                        help="run the training default's probe again instead of reading its cache (and save it)")
    parser.add_argument("--compile", action="store_true", help="also (f): (b) through torch.compile")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)  # before the probe: its cache entry is per thread count
    on_cuda = device.type == "cuda"
    images = args.images or (CIFAR_TRAIN_SIZE if on_cuda else 2048)
    workers = args.workers if args.workers is not None else (8 if on_cuda else 0)
    choice = choose_training_mode(device, "simple_cnn", SHAPE, 10, amp=args.amp,
                                  channels_last=args.channels_last, remeasure=args.remeasure)
    amp, channels_last = choice.mode.amp, choice.mode.channels_last
    print(f"default: {choice.line()}", flush=True)

    x_uint8, y = random_data(images, SHAPE)
    # the candidates on fewer images on a CPU: without native bf16, bf16 runs at a tenth of fp32's speed
    compared = images if on_cuda else min(images, 256)
    loops = {  # name -> (timed pass, images in it)
        "(a) project loop": (project_loop(x_uint8, y, device, amp, channels_last, args.compile), images),
        "(b) compute only": (compute_only(x_uint8, y, device, amp, channels_last, args.compile), images),
        "(c) torchvision": (torchvision_reference(x_uint8, y, device, amp, channels_last, workers), images),
    }
    for mode in CANDIDATES:
        loops[f"candidate {mode.name}"] = (compute_only(x_uint8[:compared], y[:compared], device, mode.amp,
                                                        mode.channels_last), compared)
    if args.compile:
        loops["(f) (b) compiled"] = (compute_only(x_uint8, y, device, amp, channels_last, compile=True), images)
    if on_cuda:
        loops["(g) (b) without cudnn.benchmark"] = (cudnn_benchmark(False)(loops["(b) compute only"][0]), images)
    native = f"; native bf16 flags {cpu_has_native_bf16()}" if device.type == "cpu" else ""
    print(f"device {device} ({hardware_name(device)}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {BATCH}, {images} images per pass (candidates: {compared}); (a)-(c): {choice.mode.name}, "
          f"cudnn.benchmark {on_cuda}; (c) workers {workers}; best of {args.repeats}{native}; "
          f"load average {load_average()}", flush=True)
    with cudnn_benchmark(on_cuda):  # as training sets it
        best = best_rates(device, loops, args.repeats)
    for name, rate in best.items():
        print(f"{name}: {rate:8.0f} images/s")
    a, b, c = list(best.values())[:3]
    print(f"(a)/(b) = {a / b:.2f}  (target >= 0.9 on CPU)")
    print(f"(a)/(c) = {a / c:.2f}  (target >= 1.0 on CPU, >= 5 on CUDA)")
    rates = {mode: best[f"candidate {mode.name}"] for mode in CANDIDATES}
    fastest = max(rates, key=rates.get)
    if choice.mode in rates:
        print(f"default/fastest = {rates[choice.mode] / rates[fastest]:.2f}  (default {choice.mode.name}, fastest "
              f"{fastest.name}; target >= 0.95: the default within 5% of the fastest candidate)")
    else:
        print(f"default {choice.mode.name} is not a candidate (given by flags); fastest: {fastest.name}")
    if args.compile:
        print(f"(f)/(b) = {best['(f) (b) compiled'] / b:.2f}  (torch.compile: worth a default if clearly > 1 on a "
              f"GPU)")
    if on_cuda:
        print(f"(b)/(g) = {b / best['(g) (b) without cudnn.benchmark']:.2f}  (cuDNN autotuning)")
    print(f"(a) full CIFAR-10 epoch ({CIFAR_TRAIN_SIZE} images): {CIFAR_TRAIN_SIZE / a:.1f} s"
          + ("  (target < 3 s on CUDA)" if on_cuda else ""))
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
