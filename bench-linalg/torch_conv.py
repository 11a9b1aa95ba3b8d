"""PyTorch CPU reference for perturb's conv2d benchmark (issue 15): forward + backward of one
layer, batch 64, 1x28x28 input, 32 filters 3x3, stride 1, padding 1, f32.

Run (torch from PyPI in a virtual environment):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch
    /tmp/torchvenv/bin/python bench-linalg/torch_conv.py
Prints, for 2 threads and 1, with and without the input's gradient (a first layer's input is
data and needs none; perturb's benchmark may compute it), the median and quartiles of many timed
steps, and the forward pass alone.
"""
import statistics
import time

import torch
import torch.nn.functional as F


def step(x, w, b):
    w.grad = b.grad = x.grad = None
    y = F.conv2d(x, w, b, stride=1, padding=1)
    y.backward(torch.ones_like(y))


def median_us(times):
    return statistics.median(times) * 1e6


def timed(f, runs=300, warm=30):
    for _ in range(warm):
        f()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return times


def main():
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, mkldnn available: {torch.backends.mkldnn.is_available()}")
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for input_grad in (True, False):
            x = torch.randn(64, 1, 28, 28, requires_grad=input_grad)
            w = torch.randn(32, 1, 3, 3, requires_grad=True)
            b = torch.randn(32, requires_grad=True)
            times = timed(lambda: step(x, w, b))
            q = statistics.quantiles(times, n=4)
            print(
                f"threads={threads} input_grad={input_grad}: forward+backward median "
                f"{median_us(times):.0f} us (quartiles {q[0] * 1e6:.0f}-{q[2] * 1e6:.0f} us, "
                f"{len(times)} steps)"
            )
        with torch.no_grad():
            times = timed(lambda: F.conv2d(x, w, b, stride=1, padding=1))
        print(f"threads={threads}: forward alone median {median_us(times):.0f} us")


if __name__ == "__main__":
    main()
