"""PyTorch CPU: one epoch of MLP 784-H-10 (ReLU, softmax cross-entropy, SGD momentum 0.9, lr 0.01) over the
60,000 Fashion-MNIST images in memory, shuffled mini-batches of B; the best of R repeats, in seconds, as JSON.
Usage: torch_epoch.py THREADS [HIDDEN=256] [BATCH=64] [REPEATS=3]"""
import json
import sys
import time

import torch

from fmnist import train

threads = int(sys.argv[1])
hidden = int(sys.argv[2]) if len(sys.argv) > 2 else 256
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
torch.set_num_threads(threads)
x, y = train()
x, y = torch.from_numpy(x), torch.from_numpy(y)
model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), batch):
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    best = min(best, time.perf_counter() - start)
print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": threads, "hidden": hidden, "batch": batch,
                  "epoch_seconds": best}))
