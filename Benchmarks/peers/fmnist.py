"""Fashion-MNIST from Debian's dataset-fashion-mnist IDX files, as float32 in [0, 1] (what `conclave bench` reads)."""
import gzip
import struct

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def _idx(path):
    with gzip.open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def train(n=60000):
    x = _idx(f"{DATA}/train-images-idx3-ubyte.gz")[:n].reshape(-1, 784).astype(np.float32) / 255.0
    y = _idx(f"{DATA}/train-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    return x, y
