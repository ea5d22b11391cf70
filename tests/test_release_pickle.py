"""Tests of :mod:`lcr_tf.release.pickle_reader`: the released LCR-Net++ files read without torch, and hostile or
damaged files refused without running anything.

The files are written by :mod:`release_format` (the byte layout of PyTorch 0.4 on Python 3). Its writer is checked
here against ``pickle.dumps`` for the same structures built from real, importable classes (the module-level
stand-ins below), and its torch streams against layouts worked out by hand from torch 0.4's ``_save``.
"""

import collections
import io
import os
import pickle
import re
import shlex
import struct
import subprocess
import zipfile

import numpy as np
import pytest
import release_format as rf

from lcr_tf.release.pickle_reader import LEGACY_MAGIC_NUMBER, UnsafePickleError, load_release_pickle

# ---------------------------------------------------------------------------------------------------------------
# Real, importable stand-ins: ``pickle.dumps`` of these must give the bytes release_format writes for the same
# structure under these names (the torch names only differ in the module and function named).
# ---------------------------------------------------------------------------------------------------------------


class AttrDict(dict):
    """Detectron's AttrDict as far as pickling goes: a dict subclass with '__immutable__' in its instance dict."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["__immutable__"] = False


def rebuild_tensor_v2(*args):
    raise AssertionError("only pickled, never called")


def load_from_bytes(data):
    raise AssertionError("only pickled, never called")


class FakeStorage:
    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return load_from_bytes, (self.data,)


class FakeTensor:
    """Reduces like a torch 0.4 tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce_ex__(self, protocol):
        return rebuild_tensor_v2, self.args + (False, collections.OrderedDict())


class PopenOnLoad:
    """An object whose unpickling starts a process (the classic hostile pickle)."""

    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        return subprocess.Popen, (self.argv,)


def _release_like(real: bool):
    """The same release-shaped dict built from real objects (``real``) or from release_format's nodes."""
    here = __name__
    means = np.array([[[102.9801, 115.9465, 122.7717]]])
    if real:
        cfg = AttrDict(TEST=AttrDict(SCALE=600, NMS=0.3), RPN=AttrDict(SIZES=(32, 64)), PIXEL_MEANS=means, NAME="x")
        model = collections.OrderedDict([
            ("conv1.weight", FakeTensor(FakeStorage(b"\x00\x80\xffw" * 70), 0, (2, 35), (35, 1))),
            ("bias", FakeTensor(FakeStorage(b"\x01\x02\x03\x04"), 0, (), ())),
        ])
    else:
        def attr(items):
            return rf.DictSubclass(rf.Global(here, "AttrDict"), items, {"__immutable__": False})

        def tensor(data, offset, size, stride):
            storage = rf.Reduce(rf.Global(here, "load_from_bytes"), (data,))
            return rf.Reduce(rf.Global(here, "rebuild_tensor_v2"),
                             (storage, offset, size, stride, False, collections.OrderedDict()))

        cfg = attr(dict(TEST=attr(dict(SCALE=600, NMS=0.3)), RPN=attr(dict(SIZES=(32, 64))), PIXEL_MEANS=means,
                        NAME="x"))
        model = collections.OrderedDict([("conv1.weight", tensor(b"\x00\x80\xffw" * 70, 0, (2, 35), (35, 1))),
                                         ("bias", tensor(b"\x01\x02\x03\x04", 0, (), ()))])
    return {"model": model, "cfg": cfg, "anchor_poses": np.arange(10, dtype=np.float32).reshape(2, 5),
            "ppi_params": {"th_pose3D": 0.3, "iou_func": "bbox_torsohead"}}


# ---------------------------------------------------------------------------------------------------------------
# The writer writes what CPython's pickler and torch 0.4 write
# ---------------------------------------------------------------------------------------------------------------

PLAIN_VALUES = [
    None, True, 0, 255, 256, 65536, -1, 2 ** 31, -2 ** 100, 1.5, float("inf"), "é\u0100\U0001f600\\\n", b"", b"abc",
    (), (1, 2, 3), (1, 2, 3, 4), [1], list(range(1001)), {i: str(i) for i in range(1000)},
    np.arange(5, dtype=np.float32), np.zeros((2, 0)), np.arange(6).reshape(2, 3).T, np.float32(2.5),
    collections.OrderedDict([("a", 1), ("b", 2)]), bytearray(b"xy"), b"x" * 70000,
    [np.arange(10000, dtype=np.float64), "y"],
]


@pytest.mark.parametrize("protocol", range(6))
def test_writer_matches_pickle_on_plain_values(protocol):
    # Memo, batching of 1000 items, protocol 0's text opcodes and protocol 4's frames (a 70 kB payload is
    # written outside them) are all exercised.
    for value in PLAIN_VALUES:
        assert rf.dumps(value, protocol) == pickle.dumps(value, protocol), repr(value)[:60]


@pytest.mark.parametrize("protocol", range(6))
def test_writer_matches_pickle_on_release_structure(protocol):
    """Nested AttrDicts (NEWOBJ + BUILD, or copy_reg._reconstructor for protocols 0-1), tensors reducing to a
    function of a storage reducing to a function of bytes, numpy arrays in and around them."""
    assert rf.dumps(_release_like(real=False), protocol) == pickle.dumps(_release_like(real=True), protocol)


def test_writer_persistent_ids_match_pickle():
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FakeStorage, "94", "cpu", 6, None) if isinstance(obj, FakeStorage) else None

    out = io.BytesIO()
    Pickler(out, 2).dump([FakeStorage(b""), 3])
    pid = rf.PersistentId(("storage", rf.Global(__name__, "FakeStorage"), "94", "cpu", 6, None))
    assert rf.dumps([pid, 3], 2) == out.getvalue()


def test_storage_bytes_have_torch_legacy_layout():
    # torch.save(storage) in torch 0.4 (_save, pickle protocol 2), worked out by hand for a FloatStorage
    # [1.0, -2.0] with key '94': magic number (LONG1, 10 bytes), protocol version 1001 (BININT2), sys_info, the
    # persistent id of the storage (BINPERSID), the key list, then count 2 (int64) and the raw float32 data.
    expected = (
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
        b"\x80\x02M\xe9\x03."
        b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88"
        b"X\n\x00\x00\x00type_sizesq\x03}q\x04(X\x05\x00\x00\x00shortq\x05K\x02X\x03\x00\x00\x00intq\x06K\x04"
        b"X\x04\x00\x00\x00longq\x07K\x08uu."
        b"\x80\x02(X\x07\x00\x00\x00storageq\x00ctorch\nFloatStorage\nq\x01X\x02\x00\x00\x0094q\x02"
        b"X\x03\x00\x00\x00cpuq\x03K\x02Ntq\x04Q."
        b"\x80\x02]q\x00X\x02\x00\x00\x0094q\x01a."
        b"\x02\x00\x00\x00\x00\x00\x00\x00" b"\x00\x00\x80\x3f" b"\x00\x00\x00\xc0"
    )
    assert rf.storage_bytes(np.float32([1.0, -2.0]), "94") == expected


def test_tensor_pickle_has_torch_layout():
    # pickle.dump(tensor, f, 2) of a torch 0.4 float tensor [1, -2], worked out by hand: the storage's bytes
    # travel as _codecs.encode(<latin-1 text>, 'latin1'), hooks as an empty OrderedDict, memo indices in order.
    inner = rf.storage_bytes(np.float32([1.0, -2.0]), "94")
    text = inner.decode("latin1").encode("utf-8")
    expected = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00(ctorch.storage\n_load_from_bytes\nq\x01"
                b"c_codecs\nencode\nq\x02X" + struct.pack("<I", len(text)) + text +
                b"q\x03X\x06\x00\x00\x00latin1q\x04\x86q\x05Rq\x06\x85q\x07Rq\x08"
                b"K\x00K\x02\x85q\tK\x01\x85q\n\x89ccollections\nOrderedDict\nq\x0b)Rq\x0ctq\rRq\x0e.")
    assert rf.dumps(rf.torch_tensor(np.float32([1.0, -2.0]), "94"), 2) == expected


# ---------------------------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------------------------

MODEL = {
    "conv1.weight": np.arange(-12, 12, dtype=np.float32).reshape(2, 3, 2, 2) / 4,
    "res2_0_branch1_bn.running_mean": np.array([1e300, -0.5, 2.0 ** -1074]),  # float64, incl. a subnormal
    "num_batches_tracked": np.array([-1, 2 ** 40, -2 ** 63], dtype=np.int64),
    "mask": np.array([[0, 255], [7, 128]], dtype=np.uint8),
    "scale": np.array(3.5, dtype=np.float32),  # 0-d
    "empty": np.zeros((0, 3), dtype=np.float32),
    "half": np.array([1.0, -0.5, 65504.0], dtype=np.float16),
    "flags": np.array([True, False, True]),
    "small": np.array([-128, 127], dtype=np.int8),
}
CFG = {
    "MODEL": {"CONV_BODY": "ResNet.ResNet50_conv4_body", "NUM_CLASSES": 3, "FASTER_RCNN": True},
    "RPN": {"SIZES": (32, 64, 128, 256, 512), "ASPECT_RATIOS": [0.5, 1, 2]},
    "TEST": {"SCALE": 600, "NMS": 0.3, "EXTRA": {"DEPTH": 3, "NONE": None}},
    "PIXEL_MEANS": np.array([[[102.9801, 115.9465, 122.7717]]]),
    "BBOX_XFORM_CLIP": 4.135166556742356,
}
ANCHORS = (np.arange(4 * 65, dtype=np.float32).reshape(4, 65) - 100) / 8
PPI = {"th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox_torsohead", "min_mode_score": 0.05}


def _assert_same_arrays(got, expected):
    assert type(got) is np.ndarray
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def _assert_same_cfg(got, expected):
    assert type(got) is dict and list(got) == list(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_same_cfg(got[key], value)
        elif isinstance(value, np.ndarray):
            _assert_same_arrays(got[key], value)
        else:
            assert type(got[key]) is type(value) and got[key] == value, key


@pytest.mark.parametrize("tensors", ["torch", "numpy"])
@pytest.mark.parametrize("protocol", range(6))
def test_release_file_round_trip(tmp_path, tensors, protocol):
    path = tmp_path / "InTheWild-ResNet50.pkl"
    rf.write_release_pickle(path, MODEL, CFG, ANCHORS, PPI, tensors=tensors, protocol=protocol)
    release = load_release_pickle(path)
    assert list(release) == ["model", "cfg", "anchor_poses", "ppi_params"]
    assert type(release["model"]) is collections.OrderedDict and list(release["model"]) == list(MODEL)
    for name, value in MODEL.items():
        _assert_same_arrays(release["model"][name], value)
    _assert_same_cfg(release["cfg"], CFG)
    _assert_same_arrays(release["anchor_poses"], ANCHORS)
    assert release["ppi_params"] == PPI


def _write(tmp_path, data: bytes, name="model.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_non_contiguous_views_with_offsets(tmp_path):
    storage = rf.load_from_bytes(rf.storage_bytes(np.arange(20, dtype=np.float32), "7"))
    # element [i, j] = storage[3 + i * 1 + j * 4]: a transposed view starting at element 3
    transposed = rf.rebuild_tensor_v2(storage, 3, (2, 3), (1, 4))
    # every other element from 5: storage[5], [7], [9]
    strided = rf.rebuild_tensor_v2(storage, 5, (3,), (2,))
    # a zero stride repeats an element: storage[19] twice per row
    repeated = rf.rebuild_tensor_v2(storage, 18, (2, 2), (1, 0))
    longs = rf.load_from_bytes(rf.storage_bytes(np.array([10, -20, 30, -40, 50, -60], dtype=np.int64), "8"))
    columns = rf.rebuild_tensor_v2(longs, 1, (2, 2), (1, 2))  # [[l1, l3], [l2, l4]]
    path = _write(tmp_path, rf.dumps({"t": transposed, "s": strided, "r": repeated, "c": columns}, 2))
    out = load_release_pickle(path)
    _assert_same_arrays(out["t"], np.array([[3, 7, 11], [4, 8, 12]], dtype=np.float32))
    _assert_same_arrays(out["s"], np.array([5, 7, 9], dtype=np.float32))
    _assert_same_arrays(out["r"], np.array([[18, 18], [19, 19]], dtype=np.float32))
    _assert_same_arrays(out["c"], np.array([[-20, -40], [30, 50]], dtype=np.int64))


def test_whole_legacy_torch_save_file_with_shared_storage_and_view(tmp_path):
    values = np.arange(10, dtype=np.float32) * 10
    key = rf.fake_storage_key(0)
    full = rf.rebuild_tensor_v2(rf.storage_pid(key, values), 0, (2, 5), (5, 1))
    # the storage view of 5 elements from element 4 (view_metadata), then elements 1 and 3 of the view
    view = rf.storage_pid(key, values, view=("view-1", 4, 5))
    of_view = rf.rebuild_tensor_v2(view, 1, (2,), (2,))
    path = _write(tmp_path, rf.legacy_stream({"full": full, "of_view": of_view, "n": 3}, {key: values}), "m.pt")
    out = load_release_pickle(path)
    _assert_same_arrays(out["full"], values.reshape(2, 5))
    _assert_same_arrays(out["of_view"], np.float32([50, 70]))
    assert out["n"] == 3


def test_bfloat16_storage_becomes_float32(tmp_path):
    raw = np.array([0x3F80, 0xC000, 0x4049], dtype=np.uint16)  # bfloat16 1.0, -2.0, 3.140625
    inner = rf.legacy_stream(rf.storage_pid("5", raw, type_name="BFloat16Storage"), {"5": raw})
    tensor = rf.rebuild_tensor_v2(rf.load_from_bytes(inner), 0, (3,), (1,))
    out = load_release_pickle(_write(tmp_path, rf.dumps(tensor, 2)))
    _assert_same_arrays(out, np.float32([1.0, -2.0, 3.140625]))


def test_cuda_storage_and_first_rebuild_function(tmp_path):
    # A storage saved from the GPU ('cuda:0', torch.cuda.*Storage spelling) and torch's older _rebuild_tensor
    # (storage, offset, size, stride) read like the others.
    values = np.array([1.5, -3.0, 8.25], dtype=np.float64)
    pid = rf.PersistentId(("storage", rf.Global("torch.cuda", "DoubleStorage"), "1", "cuda:0", 3, None))
    inner = rf.legacy_stream(pid, {"1": values})
    tensor = rf.Reduce(rf.Global("torch._utils", "_rebuild_tensor"), (rf.load_from_bytes(inner), 1, (2,), (1,)))
    _assert_same_arrays(load_release_pickle(_write(tmp_path, rf.dumps(tensor, 2))), values[1:])


def _py2_array(array: np.ndarray):
    """A numpy array as Python 2's cPickle wrote it: module numpy.core.multiarray, byte strings, int flags."""
    dtype = rf.Reduce(rf.Global("numpy", "dtype"), (rf.Py2Str(array.dtype.str[1:].encode()), 0, 1),
                      state=(3, rf.Py2Str(b"<"), None, None, None, -1, -1, 0))
    return rf.Reduce(rf.Global("numpy.core.multiarray", "_reconstruct"),
                     (rf.Global("numpy", "ndarray"), (0,), rf.Py2Str(b"b")),
                     state=(1, array.shape, dtype, False, rf.Py2Str(array.tobytes())))


@pytest.mark.parametrize("protocol", [0, 2])
def test_python2_pickle_loads(tmp_path, protocol):
    anchors = np.array([[0.5, -1.25], [3e-3, 1e6]], dtype=np.float32)  # bytes >= 0x80 among the data
    weights = np.float32([1.0, -2.0])
    # torch 0.4 on Python 2: the storage's bytes are a Python 2 str, loaded as latin-1 text
    tensor = rf.rebuild_tensor_v2(rf.load_from_bytes(rf.Py2Str(rf.storage_bytes(weights, "9"))), 0, (2,), (1,))
    data = {rf.Py2Str(b"anchor_poses"): _py2_array(anchors), rf.Py2Str(b"w"): tensor,
            rf.Py2Str(b"name"): rf.Py2Str(b"caf\xe9")}
    out = load_release_pickle(_write(tmp_path, rf.dumps(data, protocol)))
    _assert_same_arrays(out["anchor_poses"], anchors)
    _assert_same_arrays(out["w"], weights)
    assert out["name"] == "caf\xe9"


def test_attrdict_of_other_detectron_module_and_plain_pickle(tmp_path):
    cfg = rf.attr_dict({"A": {"B": 1}}, immutable=True, module="detectron.utils.collections")
    assert load_release_pickle(_write(tmp_path, rf.dumps(cfg, 1))) == {"A": {"B": 1}}
    # a file pickle.dump wrote from numpy arrays and plain containers
    plain = {"x": [np.int16(-3), (1.5, "s")], "y": np.eye(2)}
    out = load_release_pickle(_write(tmp_path, pickle.dumps(plain, 5), "plain.pkl"))
    assert out["x"][0] == -3 and out["x"][0].dtype == np.int16 and out["x"][1] == (1.5, "s")
    _assert_same_arrays(out["y"], np.eye(2))


# ---------------------------------------------------------------------------------------------------------------
# Hostile files: refused, nothing run
# ---------------------------------------------------------------------------------------------------------------


def _payload(module, name, marker):
    """Arguments of ``module.name`` that create ``marker`` if the call runs."""
    if name in ("eval", "exec"):
        return (f"open({str(marker)!r}, 'w').close()",)
    if name == "system":
        return (f"touch {shlex.quote(str(marker))}",)
    return (["touch", str(marker)],)


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("os", "system")])
def test_hostile_payloads_are_live(tmp_path, module, name):
    # Control: plain pickle does run the payloads refused below, so their refusal means something.
    marker = tmp_path / "ran"
    pickle.loads(rf.global_call_pickle(module, name, _payload(module, name, marker)))
    assert marker.exists()


@pytest.mark.parametrize("protocol,module,name,written_as", [
    (2, "os", "system", "os.system"), (4, "posix", "system", "posix.system"),
    (0, "builtins", "eval", "__builtin__.eval"),  # protocols 0-2 write Python 2's module names
    (2, "__builtin__", "eval", "__builtin__.eval"), (4, "builtins", "eval", "builtins.eval"),
    (2, "subprocess", "call", "commands.call"), (4, "subprocess", "call", "subprocess.call"),
])
def test_hostile_global_refused(tmp_path, protocol, module, name, written_as):
    marker = tmp_path / "ran"
    path = _write(tmp_path, rf.global_call_pickle(module, name, _payload(module, name, marker), protocol))
    with pytest.raises(UnsafePickleError) as err:
        load_release_pickle(path)
    assert str(err.value) == (f"refusing to load '{written_as}' from {path}: only numpy arrays, plain "
                              "containers, torch tensors and Detectron's AttrDict are allowed")
    assert not marker.exists()


def test_hostile_global_in_release_dict_refused(tmp_path):
    marker = tmp_path / "ran"
    release = {"model": collections.OrderedDict(), "cfg": rf.attr_dict({"A": 1}),
               "ppi_params": rf.Reduce(rf.Global("os", "system"), _payload("os", "system", marker))}
    with pytest.raises(UnsafePickleError, match="'os.system'"):
        load_release_pickle(_write(tmp_path, rf.dumps(release, 2)))
    assert not marker.exists()


@pytest.mark.parametrize("protocol,written_as", [(2, "commands.Popen"), (4, "subprocess.Popen")])
def test_reduce_to_popen_refused(tmp_path, protocol, written_as):
    marker = tmp_path / "ran"
    path = _write(tmp_path, pickle.dumps({"model": PopenOnLoad(["touch", str(marker)])}, protocol))
    with pytest.raises(UnsafePickleError, match=re.escape(f"'{written_as}' from {path}:")):
        load_release_pickle(path)
    assert not marker.exists()


def test_protocol0_inst_opcode_refused(tmp_path):
    marker = tmp_path / "ran"
    data = b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n."  # INST: os.system('touch ...')
    with pytest.raises(UnsafePickleError, match="'os.system'"):
        load_release_pickle(_write(tmp_path, data))
    assert not marker.exists()


def _tensor_over(inner: bytes):
    return rf.rebuild_tensor_v2(rf.load_from_bytes(inner), 0, (1,), (1,))


def test_hostile_global_inside_storage_bytes_refused(tmp_path):
    marker = tmp_path / "ran"
    values = np.float32([1.0])
    hostile_object = rf.legacy_stream(rf.Reduce(rf.Global("os", "system"), _payload("os", "system", marker)),
                                      {"1": values})
    hostile_type = rf.legacy_stream(rf.PersistentId(("storage", rf.Global("builtins", "eval"), "1", "cpu", 1, None)),
                                    {"1": values})
    hostile_magic = rf.legacy_stream(rf.storage_pid("1", values), {"1": values},
                                     magic=rf.Reduce(rf.Global("builtins", "exec"),
                                                     _payload("builtins", "exec", marker)))
    for inner, refused in [(hostile_object, "os.system"), (hostile_type, "__builtin__.eval"),
                           (hostile_magic, "__builtin__.exec")]:
        path = _write(tmp_path, rf.dumps({"w": _tensor_over(inner)}, 2))
        with pytest.raises(UnsafePickleError) as err:
            load_release_pickle(path)
        assert f"'{refused}' from {path} (inside a tensor's storage bytes)" in str(err.value)
    assert not marker.exists()


def test_state_of_a_checked_tensor_cannot_be_changed(tmp_path):
    # A BUILD after the tensor's bounds were checked, moving its offset far outside its storage.
    tensor = _tensor_over(rf.storage_bytes(np.float32([1.0]), "1"))
    tensor.state = (None, {"offset": 10 ** 6})
    with pytest.raises(ValueError, match="tries to set the state"):
        load_release_pickle(_write(tmp_path, rf.dumps(tensor, 2)))


def test_object_arrays_refused(tmp_path):
    path = _write(tmp_path, pickle.dumps(np.array([1, "a"], dtype=object), 2))
    with pytest.raises(ValueError, match="holds Python objects"):
        load_release_pickle(path)


# ---------------------------------------------------------------------------------------------------------------
# Damaged files
# ---------------------------------------------------------------------------------------------------------------


def _load_error(path) -> str:
    with pytest.raises(ValueError) as err:
        load_release_pickle(path)
    assert not isinstance(err.value, UnsafePickleError)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "model.pkl"
    rf.write_release_pickle(path, MODEL, CFG, ANCHORS, PPI)
    data = path.read_bytes()
    for cut in (1, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        assert "not a readable pickle" in _load_error(path)


def test_storage_length_inconsistent(tmp_path):
    values = np.float32([1.0, -2.0])
    short = rf.storage_bytes(values, "140234")[:-3]
    assert _load_error(_write(tmp_path, rf.dumps(_tensor_over(short), 2))).endswith(
        "a tensor's storage bytes (torch.storage._load_from_bytes): storage '140234' declares 2 float32 elements "
        "but 5 bytes follow")
    miscounted = rf.legacy_stream(rf.storage_pid("3", values), {"3": values}, counts={"3": 3})
    assert "storage '3' holds 3 elements but its reference declares 2" in _load_error(
        _write(tmp_path, rf.dumps(_tensor_over(miscounted), 2)))
    no_data = rf.legacy_stream(rf.storage_pid("3", values), {"3": values}, keys=[])
    assert "storage '3' is referred to but its data is not in the stream" in _load_error(
        _write(tmp_path, rf.dumps(_tensor_over(no_data), 2)))
    extra = rf.storage_bytes(values, "3") + b"\x00"
    assert "1 bytes follow the data of the last storage" in _load_error(
        _write(tmp_path, rf.dumps(_tensor_over(extra), 2)))


def test_tensor_outside_its_storage(tmp_path):
    storage = rf.load_from_bytes(rf.storage_bytes(np.arange(12, dtype=np.float32), "7"))
    tensor = rf.rebuild_tensor_v2(storage, 3, (2, 3), (1, 4))  # reaches 3 + 1 + 8 = 12
    assert ("a tensor of size (2, 3), stride (1, 4) and storage offset 3 reaches element 12 of a storage of 12 "
            "elements") in _load_error(_write(tmp_path, rf.dumps(tensor, 2)))


@pytest.mark.parametrize("damage,message", [
    ({"magic": 0x1950A86A20F9469CFC6D}, "not a torch.save stream: it starts with 119547037146038801333357, not the "
                                        "magic number 0x1950a86a20f9469cfc6c"),
    ({"version": 1000}, "torch.save protocol version 1000, not 1001"),
    ({"sys_info": {"protocol_version": 1001, "little_endian": False}}, "written on a big-endian machine"),
])
def test_bad_legacy_header(tmp_path, damage, message):
    values = np.float32([1.0])
    inner = rf.legacy_stream(rf.storage_pid("1", values), {"1": values}, **damage)
    assert message in _load_error(_write(tmp_path, rf.dumps(_tensor_over(inner), 2)))
    # the same stream as a whole file (a wrong magic number makes it a pickle of a number and trailing bytes)
    whole = message if "magic" not in damage else ("(it holds the number 119547037146038801333357, not the "
                                                   "magic number 0x1950a86a20f9469cfc6c that starts a torch.save "
                                                   "file)")
    assert whole in _load_error(_write(tmp_path, inner, "whole.pt"))


def test_legacy_magic_value(tmp_path):
    assert LEGACY_MAGIC_NUMBER == int.from_bytes(bytes.fromhex("6cfc9c46f9206aa85019"), "little")


def test_zip_torch_file_refused(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}, 2))
    message = _load_error(path)
    assert "a zip archive, the format of torch.save since torch 1.6" in message


def test_empty_and_non_pickle_files(tmp_path):
    assert _load_error(_write(tmp_path, b"", "empty.pkl")).endswith("the file is empty, not a pickle")
    assert "not a readable pickle" in _load_error(_write(tmp_path, b"hello, world\n", "text.pkl"))
    assert "4 bytes follow the end of the pickle" in _load_error(
        _write(tmp_path, pickle.dumps({"a": 1}, 2) + b"junk", "trailing.pkl"))
    assert "a plain pickle holds none" in _load_error(
        _write(tmp_path, rf.dumps(rf.PersistentId(("storage", "x")), 2), "pid.pkl"))


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_release_pickle(os.path.join(tmp_path, "absent.pkl"))
