#!/usr/bin/python3
"""PyTorch reference for bench/train_epoch: one training epoch of the same network
on the same data as kdflow, timed the same way.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, which calls BLIS through
libblas.so.3). bench/train_epoch/train_epoch writes the data (x.f32: N×784 float32,
y.i32: N int32, raw little-endian) and calls this script once per measurement with
BLIS_NUM_THREADS / OMP_NUM_THREADS set to --threads.

Prints seconds=<epoch wall time> and loss=<mean batch loss>.
"""
import argparse
import os
import time

import numpy as np
import torch
from torch import nn


def build(model):
    # The same layers, order and PyTorch default initialisation as kdflow's
    # "mlp:784-512-512-10" and "cnn:1x28x28-c32-p2-c64-p2-f256-10".
    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = np.fromfile(os.path.join(args.data, "x.f32"), dtype="<f4").reshape(-1, 784)[: args.n]
    y = np.fromfile(os.path.join(args.data, "y.i32"), dtype="<i4")[: args.n]
    x = torch.from_numpy(x.copy())
    y = torch.from_numpy(y.astype(np.int64))
    if args.model == "cnn":
        x = x.view(-1, 1, 28, 28)

    net = build(args.model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    lossf = nn.CrossEntropyLoss()

    def epoch(perm):
        total, batches = 0.0, 0
        for s in range(0, len(perm), args.batch):
            idx = perm[s : s + args.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = lossf(net(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        return total / max(batches, 1)

    net.train()
    epoch(torch.randperm(len(y))[: 5 * args.batch])  # warm-up, as the C side
    perm = torch.randperm(len(y))
    t0 = time.perf_counter()
    mean_loss = epoch(perm)
    sec = time.perf_counter() - t0
    print("seconds=%.6f" % sec)
    print("loss=%.6f" % mean_loss)
    print("threads=%d torch=%s blas=%s" % (torch.get_num_threads(), torch.__version__,
                                           os.environ.get("BLIS_NUM_THREADS", "?")))


if __name__ == "__main__":
    main()
