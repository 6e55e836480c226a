"""Attack throughput on SimpleCNN: our batched NES, Square and PGD against references, same model and inputs.

Prints NES queries/s (ours, the original's one-antithetic-pair-at-a-time, the raw batched forward rate), Square's
against the raw forward rate, PGD's time against a plain loop; then PGD and NES with the host reading successes
every step against every K steps (attacks.base.SYNC_EVERY), counting host syncs on CUDA. Not a test.

    python bench/attack_throughput.py [--device cpu] [--nes-images 16] [--square-images 64] [--pgd-batch 16]
                                      [--repeats 3] [--threads N] [--sync-every K]
"""
import warnings

import torch
import torch.nn.functional as F

from timing import load_average, timed  # first: puts the repository on sys.path
from attacks import NES, PGD, Square
from attacks.base import sync_every
from attacks.nes import default_query_batch
from common.cli import ArgumentParser, run_main
from common.device import DEVICE_CHOICES, resolve_device
from models.simple_cnn import SimpleCNN

EPS, ALPHA, SIGMA = 8 / 255, 1 / 255, 1 / 255


def reference_nes(model, x, y, eps, steps, samples):
    """The original repository's shape: per image, per iteration, one antithetic pair per forward."""
    queries = 0
    for image, label in zip(x, y):
        image, label = image.unsqueeze(0), label.unsqueeze(0)
        x_adv = (image + torch.empty_like(image).uniform_(-eps, eps)).clamp(0, 1)
        queries += 1
        if model(image).argmax(1) != label:
            continue
        for _ in range(steps):
            queries += 1
            if model(x_adv).argmax(1) != label:
                break
            estimate = torch.zeros_like(image)
            for _ in range(samples):
                noise = torch.randn_like(image)
                losses = F.cross_entropy(model(torch.cat([x_adv + SIGMA * noise, x_adv - SIGMA * noise])),
                                         label.repeat(2), reduction="none")
                estimate += (losses[0] - losses[1]) * noise
                queries += 2
            x_adv = torch.min(torch.max(x_adv + ALPHA * estimate.sign(), image - eps), image + eps).clamp(0, 1)
    return queries


def reference_pgd(model, x, y, eps, steps):
    """Plain L-inf PGD: uniform start, sign steps, clip; no freezing, no bookkeeping."""
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + ALPHA * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def raw_forward_rate(model, chunk, device, repeats):
    images = torch.rand(chunk, 3, 32, 32, device=device)
    seconds, _ = timed(device, lambda: [model(images) for _ in range(repeats)])
    return chunk * repeats / seconds


def host_syncs(device, function):
    """How often ``function()`` makes the host wait for the GPU (CUDA's sync debug mode); None elsewhere."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            function()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(warning.message) for warning in caught)


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=DEVICE_CHOICES)
    parser.add_argument("--nes-images", type=int, default=16, help="images attacked by our NES")
    parser.add_argument("--reference-images", type=int, default=2, help="images attacked by the reference NES")
    parser.add_argument("--nes-steps", type=int, default=2)
    parser.add_argument("--nes-samples", type=int, default=64, help="antithetic pairs per estimate")
    parser.add_argument("--query-batch", type=int, default=None, help="NES chunk size (default: NES's own)")
    parser.add_argument("--square-images", type=int, default=64, help="images attacked by Square at once")
    parser.add_argument("--square-queries", type=int, default=200, help="Square iterations per image")
    parser.add_argument("--pgd-batch", type=int, default=16)
    parser.add_argument("--pgd-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="every timing is the best of this many")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--sync-every", type=int, default=None,
                        help="K of the last comparison (default: the device's, attacks.base.SYNC_EVERY)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SimpleCNN().to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    x = torch.rand(max(args.nes_images, args.reference_images, args.pgd_batch, args.square_images), 3, 32, 32,
                   device=device)
    with torch.no_grad():  # not inference mode: the PGD references need y in autograd
        y = model(x).argmax(1)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}, load average "
          f"{load_average()}", flush=True)

    # eps = 0: no sample can succeed, so every run makes its full number of queries and rates compare like for like.
    nes = NES(model, eps=0.0, steps=args.nes_steps, samples=args.nes_samples, query_batch=args.query_batch,
              seed=args.seed)
    chunk = args.query_batch or default_query_batch(device)
    x_nes, y_nes = x[:args.nes_images], y[:args.nes_images]
    with torch.inference_mode():  # first forwards of a shape pay one-off setup costs; keep them out of every timing
        for size in (1, 2, chunk, args.nes_images):
            model(x[:1].expand(size, -1, -1, -1))
    # Best of `repeats`, interleaved, so that load from other processes hits all three alike.
    ours = raw = reference = 0.0
    for _ in range(args.repeats):
        seconds, (_, queries) = timed(device, lambda: nes(x_nes, y_nes))
        ours = max(ours, int(queries.sum()) / seconds)
        with torch.inference_mode():
            raw = max(raw, raw_forward_rate(model, chunk, device, repeats=max(1, int(queries.sum()) // chunk)))
            ref_seconds, ref_queries = timed(device, lambda: reference_nes(
                model, x[:args.reference_images], y[:args.reference_images], 0.0, args.nes_steps, args.nes_samples))
        reference = max(reference, ref_queries / ref_seconds)
    print(f"NES at eps 0 ({args.nes_images} images, {args.nes_samples} pairs, {args.nes_steps} steps, chunk {chunk}): "
          f"ours {ours:,.0f} queries/s ({int(queries.sum())} queries); one-pair reference {reference:,.0f} "
          f"queries/s; raw batched forward {raw:,.0f} images/s")
    print(f"  NES speed-up vs one-pair reference: {ours / reference:.2f}x (target >= 1.5 on CPU, >= 20 on GPU)")
    print(f"  NES fraction of raw forward throughput: {ours / raw:.2f} (target >= 0.8)")

    # Square at eps 0: no image is fooled, so every image makes every query and rates compare like for like.
    square = Square(model, eps=0.0, queries=args.square_queries, seed=args.seed)
    x_square, y_square = x[:args.square_images], y[:args.square_images]
    ours = raw = 0.0
    for _ in range(args.repeats):
        seconds, (_, queries) = timed(device, lambda: square(x_square, y_square))
        ours = max(ours, int(queries.sum()) / seconds)
        with torch.inference_mode():
            raw = max(raw, raw_forward_rate(model, args.square_images, device, repeats=args.square_queries))
    print(f"Square at eps 0 ({args.square_images} images, {args.square_queries} iterations): ours {ours:,.0f} "
          f"queries/s; raw batched forward at batch {args.square_images} {raw:,.0f} images/s")
    print(f"  Square fraction of raw forward throughput: {ours / raw:.2f} (target >= 0.5 on CPU)")

    x_pgd, y_pgd = x[:args.pgd_batch], y[:args.pgd_batch]
    # eps = 0 keeps every sample unsuccessful, so both run every step: the ratio is pure per-step overhead.
    # At eps = 8/255 ours may also stop early on samples that are already fooled.
    for eps in (0.0, EPS):
        ours_best = reference_best = float("inf")
        for repeat in range(args.repeats):
            attack = PGD(model, eps=eps, alpha=ALPHA, steps=args.pgd_steps, seed=args.seed + repeat)
            ours_best = min(ours_best, timed(device, lambda: attack(x_pgd, y_pgd))[0])
            reference_best = min(reference_best, timed(device, lambda: reference_pgd(
                model, x_pgd, y_pgd, eps, args.pgd_steps))[0])
        print(f"PGD {args.pgd_steps} steps, batch {args.pgd_batch}, eps {eps * 255:g}/255: ours {ours_best:.2f} s, "
              f"plain loop {reference_best:.2f} s, ratio {ours_best / reference_best:.3f} (target <= 1.05)")

    # At eps 8/255 samples finish along the way: reading that every step costs a sync per step on a GPU.
    every = sync_every(device, args.sync_every)
    for k in sorted({1, every}):
        attacks = {"PGD": lambda: PGD(model, eps=EPS, alpha=ALPHA, steps=args.pgd_steps, seed=args.seed,
                                      sync_every=k)(x_pgd, y_pgd),
                   "NES": lambda: NES(model, eps=EPS, steps=args.nes_steps, samples=args.nes_samples,
                                      query_batch=args.query_batch, seed=args.seed, sync_every=k)(x_nes, y_nes)}
        for name, run in attacks.items():
            seconds = min(timed(device, run)[0] for _ in range(args.repeats))
            syncs = host_syncs(device, run)
            print(f"{name} at eps 8/255, host reads successes every {k} step(s): {seconds:.3f} s"
                  + ("" if syncs is None else f", {syncs} host syncs"))
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    run_main(main)
