"""The CNN of issue 16 on the digits data, in PyTorch: accuracy on perturb's split, and the
time of one training epoch (batch 64, Adam). See README.md beside this file."""

import argparse
import csv
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_split():
    """perturb's train/test split of the digits (data/digits.csv, rows from digits_split.csv),
    pixels scaled by 1/16 into [0, 1], as (N, 1, 8, 8) float32 images and int64 labels."""
    with open(ROOT / "data" / "digits.csv") as f:
        rows = list(csv.reader(f))[1:]
    with open(HERE / "digits_split.csv") as f:
        parts = list(csv.DictReader(f))

    def take(name):
        idx = [int(p["row"]) for p in parts if p["part"] == name]
        x = torch.tensor([[float(v) for v in rows[i][:64]] for i in idx]) / 16.0
        y = torch.tensor([int(float(rows[i][64])) for i in idx])
        return x.reshape(-1, 1, 8, 8), y

    return take("train"), take("test")


def digits_cnn(c1, c2):
    """conv(1->c1, 3x3, pad 1)-relu-maxpool 2-conv(c1->c2, 3x3, pad 1)-relu-maxpool 2-flatten-
    linear(c2*2*2 -> 10)."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 2 * 2, 10),
    )


def epoch(model, opt, x, y, batch, gen):
    """One epoch: every training row once, in batches of `batch` (the last one smaller)."""
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(y), generator=gen)
    for start in range(0, len(y), batch):
        idx = order[start : start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--c1", type=int, default=32)
    p.add_argument("--c2", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--time", type=int, default=0, metavar="N",
        help="instead of training to the end, time N single epochs and print their median",
    )
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    (xtr, ytr), (xte, yte) = load_split()
    xtr, xte = xtr.to(dtype), xte.to(dtype)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.dtype}, "
        f"train {len(ytr)}, test {len(yte)}, c1={a.c1} c2={a.c2} lr={a.lr} batch={a.batch}"
    )
    if a.time:
        torch.manual_seed(a.seeds[0])
        model = digits_cnn(a.c1, a.c2).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        gen = torch.Generator().manual_seed(a.seeds[0])
        epoch(model, opt, xtr, ytr, a.batch, gen)  # warm-up
        times, cpu = [], []
        for _ in range(a.time):
            t, c = time.perf_counter(), time.process_time()
            epoch(model, opt, xtr, ytr, a.batch, gen)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        # The process's CPU time (all its threads) as well: on a loaded machine it counts
        # only the turns the process had, as perturb-nn's example cnn_epoch reports it.
        print(
            f"one epoch ({-(-len(ytr) // a.batch)} batches): median {statistics.median(times) * 1e3:.2f} ms, "
            f"min {min(times) * 1e3:.2f} ms, max {max(times) * 1e3:.2f} ms over {a.time} epochs; "
            f"process CPU time median {statistics.median(cpu) * 1e3:.2f} ms"
        )
        return
    for seed in a.seeds:
        torch.manual_seed(seed)
        model = digits_cnn(a.c1, a.c2).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        gen = torch.Generator().manual_seed(seed)
        accs = []
        for e in range(a.epochs):
            for g in opt.param_groups:  # cosine decay to 0 over the run, as in the Rust test
                g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * e / a.epochs))
            epoch(model, opt, xtr, ytr, a.batch, gen)
            accs.append(accuracy(model, xte, yte))
        print(f"seed {seed}: test accuracy {accs[-1]:.4f} after {a.epochs} epochs "
              f"(min over the last 5 epochs {min(accs[-5:]):.4f})")


if __name__ == "__main__":
    main()
