#!/usr/bin/env bash
# Everything docs/benchmarks.md's GPU column needs, in one command on a CUDA machine (the `device` tool):
#   bash bench/gpu_check.sh
# 1. the test suite; 2. training throughput, including one full-size (50,000-image) epoch on random
# CIFAR-shaped data, torch.compile against eager (f) and cuDNN autotuning against none (g); 3. attack
# throughput (NES, Square, PGD) and the step loops' host syncs, every step against every 10 steps;
# 4. the evaluation's overhead over the same attacks called directly; 5. one quick end-to-end run on
# generated data with the CUDA configuration (bf16 autocast, channels_last, data on the GPU, 4096-image
# NES chunks), training once more with --compile; 6. bf16 against fp32 test accuracy on real Fashion-MNIST
# where datasets/fashion-mnist/ holds it (the machine has no network: carry the folder); 7. CIFAR-10's own images
# (the JPEG copy, cifar10-jpeg): --quick training of the baseline and L1 at conv1, evaluation and figures on CUDA.
# The device machine does not get ../shared: carry the archive as datasets/cifar10-jpeg.tar.gz (ignored by git):
#   cp ../shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz datasets/    # then run with carry ["datasets/cifar10-jpeg.tar.gz"]
# (or set CIFAR10_JPEG to it); the suite's real-CIFAR tests then run too. The full study on it, the day a GPU is lent:
#   python experiments/fashion_mnist.py --gpu --dataset cifar10-jpeg --data-dir datasets/cifar10-jpeg.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CIFAR10_JPEG:-}" ] && [ -f datasets/cifar10-jpeg.tar.gz ]; then
  export CIFAR10_JPEG="$PWD/datasets/cifar10-jpeg.tar.gz"  # where tests/test_real_cifar10_jpeg.py looks first
fi
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: run this on a GPU machine"
print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
echo "== tests"
time python -m pytest -q
echo "== training throughput (a full 50,000-image epoch per timed pass; (f) compiled, (g) without autotuning)"
python bench/train_throughput.py --device cuda --compile
echo "== attack throughput; host syncs of PGD and NES at K = 1 and 10"
python bench/attack_throughput.py --device cuda --nes-images 64 --nes-samples 200 --square-images 256 --pgd-batch 256
echo "== end to end on generated data, CUDA configuration"
work=$(mktemp -d)
python -c "import sys; sys.path.insert(0, 'tests'); from cifar_fixture import make_cifar_fixture; make_cifar_fixture('$work/data', 500, 100)"
F="--data-dir $work/data --models-dir $work/models --results-dir $work/results --device cuda"
time python main.py --mode train --quick --layers conv3 fc1 $F
time python main.py --mode train --quick --baseline-only --compile --models-dir "$work/compiled" \
  --data-dir "$work/data" --device cuda
time python main.py --mode eval --quick --layers conv3 fc1 $F
time python main.py --mode eval --layers conv3 --no-baseline --n-eval 1000 --query-n 100 --eps-sweep $F
python main.py --mode vis --layers conv3 fc1 --results-dir "$work/results"
rm -rf "$work"
echo "== bf16 against fp32 training on real Fashion-MNIST (--quick, 3 seeds each)"
if ls datasets/fashion-mnist/t10k-labels-idx1-ubyte* >/dev/null 2>&1; then
  python bench/amp_accuracy.py --device cuda --data-dir datasets
else
  echo "skipped: no Fashion-MNIST in datasets/fashion-mnist/ (copy /usr/share/datasets/fashion-mnist/* there and carry it)"
fi
echo "== CIFAR-10's images (the JPEG copy): --quick baseline and L1 at conv1, eval, figures"
if [ -n "${CIFAR10_JPEG:-}" ] && [ -e "$CIFAR10_JPEG" ]; then
  work=$(mktemp -d)
  D="--dataset cifar10-jpeg --data-dir $CIFAR10_JPEG --models-dir $work/models --device cuda"
  time python main.py --mode train --quick --layers conv1 $D
  time python main.py --mode eval --quick --layers conv1 $D --results-dir "$work/results"
  python main.py --mode vis --dataset cifar10-jpeg --layers conv1 --results-dir "$work/results"
  rm -rf "$work"
else
  echo "skipped: no CIFAR-10 JPEG copy (carry datasets/cifar10-jpeg.tar.gz or set CIFAR10_JPEG)"
fi
