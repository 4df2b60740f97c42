"""safetensors interoperability fixtures for tests/test_checkpoint.c.

  python gen_safetensors.py            writes tests/golden/safetensors/python.safetensors with the
                                       `safetensors` package (the reference implementation); the C
                                       reader must load it (test_python_written_file).
  python gen_safetensors.py --check-c  loads tests/golden/safetensors/c_written.safetensors (written
                                       by our C writer; test_c_written_golden keeps it byte-stable) with
                                       the reference implementation and checks every value.

Needs numpy and safetensors (pip install numpy safetensors). Both files hold EXPECTED below.
"""
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "safetensors")

EXPECTED = {
    "f32": (np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5) - np.float32(1.0)),
    "f64": np.array([1.5, -2.25, 1e300], dtype=np.float64),
    "i32": np.arange(-3, 4, dtype=np.int32),
    "i64": np.array([[2**40], [-5]], dtype=np.int64),
    "u8": np.array([250, 251, 252, 253, 254, 255], dtype=np.uint8).reshape(1, 2, 3),
    "scalar": np.array(3.25, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
}


def check(path, want_meta):
    got = load_file(path)
    assert sorted(got) == sorted(EXPECTED), f"{path}: tensors {sorted(got)}"
    for name, want in EXPECTED.items():
        g = got[name]
        assert g.dtype == want.dtype, f"{name}: dtype {g.dtype} != {want.dtype}"
        assert g.shape == want.shape, f"{name}: shape {g.shape} != {want.shape}"
        assert np.array_equal(g, want), f"{name}: values differ"
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    for k, v in want_meta.items():
        assert meta.get(k) == v, f"metadata {k}: {meta.get(k)!r} != {v!r}"
    print(f"{path}: ok ({len(got)} tensors, metadata {meta})")


def main():
    if "--check-c" in sys.argv[1:]:
        check(os.path.join(OUT, "c_written.safetensors"), {"format": "unmix", "epoch": "7", "note": "a \"quoted\" value"})
        return
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "python.safetensors")
    save_file(EXPECTED, path, metadata={"format": "pt", "source": "gen_safetensors.py"})
    check(path, {"format": "pt"})


if __name__ == "__main__":
    main()
