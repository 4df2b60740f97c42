"""Writer for unmix-c golden fixtures (read by tests/support/testutil.c).

Format, little-endian: b"UNMIXFX1" | u32 version=1 | u32 count | entries, each
u32 name_len | name | u32 dtype (0 f32, 3 i32, 4 u8, 5 f64) | u32 ndim | u32 shape[ndim] | data.
Only numpy is needed here; the generator scripts beside this file use PyTorch to compute
the reference values (pip install torch torchvision pillow when regenerating).
"""
import struct

import numpy as np

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 3, np.dtype(np.uint8): 4, np.dtype(np.float64): 5}


def write_fixture(path, entries):
    """entries: dict name -> array-like (float32/int32/uint8/float64; other types converted)."""
    items = []
    for name, value in entries.items():
        a = np.asarray(value)
        if a.dtype not in _DTYPES:
            if np.issubdtype(a.dtype, np.floating):
                a = a.astype(np.float32)
            elif np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
                a = a.astype(np.int32)
            else:
                raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        items.append((name, np.ascontiguousarray(a)))
    with open(path, "wb") as f:
        f.write(b"UNMIXFX1")
        f.write(struct.pack("<II", 1, len(items)))
        for name, a in items:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<II", _DTYPES[a.dtype], a.ndim))
            for d in a.shape:
                f.write(struct.pack("<I", d))
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
