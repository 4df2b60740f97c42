#!/usr/bin/env python3
# Checks a `unmix export --to detectron2` pickle against the torchvision export of the same
# checkpoint (tests/test_eval_cmds.c): the detectron2 names the official MoCo converter gives
# the torchvision names, the same dtypes, shapes and bytes, and the top-level keys detectron2's
# checkpointer reads.
#   check_d2_pkl.py OUT.pkl TORCHVISION.safetensors [--numpy]
# Without --numpy the pickle is read with stand-ins for numpy's classes (only the standard
# library is needed); with --numpy through numpy itself (exit 77 when numpy is missing).
import json
import pickle
import struct
import sys

SKIP = 77


def reference_name(k):
    """The renaming of the official detection/convert-pretrain-to-detectron2.py."""
    if "layer" not in k:
        k = "stem." + k
    for t in [1, 2, 3, 4]:
        k = k.replace("layer{}".format(t), "res{}".format(t + 1))
    for t in [1, 2, 3]:
        k = k.replace("bn{}".format(t), "conv{}.norm".format(t))
    k = k.replace("downsample.0", "shortcut")
    k = k.replace("downsample.1", "shortcut.norm")
    return k


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    codes = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "|u1"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = (codes[t["dtype"]], tuple(t["shape"]), data[b:e])
    return out


class FakeDtype:
    def __init__(self, code, align, copy):
        self.code = code
        self.order = None

    def __setstate__(self, state):
        assert state[0] == 3 and state[5:] == (-1, -1, 0), state
        self.order = state[1]


class FakeArray:
    def __setstate__(self, state):
        version, shape, dtype, fortran, raw = state
        assert version == 1 and fortran is False and isinstance(raw, bytes), state[:4]
        self.key = (dtype.order + dtype.code, tuple(shape), raw)


def fake_reconstruct(cls, shape, typecode):
    assert cls == "ndarray" and shape == (0,) and typecode == b"b", (cls, shape, typecode)
    return FakeArray()


class StandIn(pickle.Unpickler):
    def find_class(self, module, name):
        table = {
            ("numpy.core.multiarray", "_reconstruct"): fake_reconstruct,
            ("numpy", "ndarray"): "ndarray",
            ("numpy", "dtype"): FakeDtype,
        }
        if (module, name) not in table:
            raise pickle.UnpicklingError("unexpected global %s.%s" % (module, name))
        return table[(module, name)]


def main():
    pkl, st = sys.argv[1], sys.argv[2]
    use_numpy = "--numpy" in sys.argv[3:]
    with open(pkl, "rb") as f:
        if use_numpy:
            try:
                import numpy  # noqa: F401
            except ImportError:
                print("numpy is not installed")
                return SKIP
            obj = pickle.load(f, encoding="latin1")  # as detectron2's checkpointer opens it
            model = {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in obj["model"].items()}
            assert all(type(v).__name__ == "ndarray" for v in obj["model"].values())
        else:
            obj = StandIn(f, encoding="latin1").load()
            model = {k: v.key for k, v in obj["model"].items()}
    assert set(obj) == {"model", "__author__", "matching_heuristics"}, sorted(obj)
    assert obj["matching_heuristics"] is True
    tv = read_safetensors(st)
    want = {reference_name(k): v for k, v in tv.items()}
    if set(want) != set(model):
        print("names differ: only in the pickle %s; only expected %s" % (sorted(set(model) - set(want))[:5], sorted(set(want) - set(model))[:5]))
        return 1
    for k, v in want.items():
        if model[k] != v:
            print("%s differs: %s %s vs %s %s" % (k, model[k][0], model[k][1], v[0], v[1]))
            return 1
    print("ok: %d arrays, detectron2 names, identical to the torchvision export" % len(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
