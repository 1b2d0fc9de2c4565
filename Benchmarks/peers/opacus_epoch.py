"""Opacus: one private epoch (DP-SGD) of MLP 784-H-10 on the first N Fashion-MNIST records, Poisson sampling at
expected batch B, per-example clip C = 1, noise multiplier σ = 1, SGD lr 0.1, one thread, ghost clipping
(Opacus's fastest mode; `hooks` for its default per-sample gradients); the best of R repeats, as JSON.
Usage: opacus_epoch.py N B [ghost|hooks] [HIDDEN=128] [REPEATS=3]"""
import json
import sys
import time
import warnings

import opacus
import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from fmnist import train

warnings.filterwarnings("ignore")
n, batch = int(sys.argv[1]), int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "ghost"
hidden = int(sys.argv[4]) if len(sys.argv) > 4 else 128
repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 3
torch.set_num_threads(1)
x, y = train(n)
data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
best = float("inf")
for _ in range(repeats):
    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(data, batch_size=batch)
    loss_fn = torch.nn.CrossEntropyLoss()
    engine = PrivacyEngine()
    kwargs = {"grad_sample_mode": "ghost"} if mode == "ghost" else {}
    if mode == "ghost":
        model, opt, loss_fn, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader, criterion=loss_fn,
                                                          noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=True, **kwargs)
    else:
        model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                                 noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=True)
    start = time.perf_counter()
    for xb, yb in loader:
        if len(xb) == 0:
            continue
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    best = min(best, time.perf_counter() - start)
print(json.dumps({"peer": f"opacus-{mode}", "opacus": opacus.__version__, "examples": n, "batch": batch, "hidden": hidden,
                  "epoch_seconds": best}))
