#!/usr/bin/python3
"""End-to-end check of the `conv1d` command-line tool against PyTorch.

Draws random Conv1d configurations (seeded, reproducible), writes the tensors
as .npy files, runs `conv1d apply` and `conv1d backward`, and compares what
they write with torch.nn.Conv1d / torch.nn.functional.conv1d and autograd.

What is covered: in/out channels, kernel size (1..9 and a few wide kernels),
stride 1..4, dilation 1..4, groups (grouped, depthwise with a depth
multiplier), bias on/off, padding as an int, an explicit "L,R" pair, 'same'
(stride 1), 'valid' and 'causal'; every padding mode (zeros, reflect,
replicate, circular) including amounts at PyTorch's limits (reflect: pad < L,
circular: pad <= L); float32 and float64; layouts ncl and nlc; batch 0, batch
>= 1 and unbatched rank-2 inputs; separable convolution (depthwise then 1x1
pointwise through --pointwise-weight / --pointwise-bias, forward and
backward). A quarter of the cases force --algorithm reference, the others let
the plan choose (or all use --algorithm NAME when given); --threads is 1, 2 or
left to the default.

The PyTorch side:
  * int / 'same' / 'valid' padding: torch.nn.Conv1d's own forward
    (`_conv_forward`, which pads with F.pad for non-zero padding modes);
  * an "L,R" pair or 'causal': F.pad(x, (L, R), mode) then F.conv1d with
    padding 0 (mode 'constant' with value 0 for zeros);
  * separable: the depthwise conv above, then F.conv1d with the (C_out, C_mid, 1)
    pointwise weight and bias;
  * unbatched (C, L) inputs are computed as a batch of one and squeezed, which
    is what torch.nn.Conv1d means by them (PyTorch 1.13's circular F.pad
    cannot take a rank-2 input, newer versions do exactly this);
  * gradients: torch.autograd.grad of the same expression.
The PyTorch side always computes in float64. For float32 cases it is fed the
exact float32 input values, so it is the exact answer to the float32 problem
up to float64 rounding; conv1d's float32 output is compared with that.

Tolerance (per output tensor, expected b from PyTorch, actual a from conv1d):
    max |a - b| <= rtol * max |b|        (a max-norm relative error)
with rtol = 1e-5 for float32 and 1e-12 for float64. Shapes and dtypes must
match exactly, the files must be little-endian C-order .npy, and empty tensors
must have the right (empty) shape. The norm-relative criterion is the right one
for sums of products of random values: an element near zero by cancellation
carries the absolute rounding error of the large terms that cancelled.

Whether a configuration is legal is decided by PyTorch too: a random draw that
PyTorch rejects (kernel wider than the padded input, reflect padding >= L,
...) must make the CLI exit with status 2, print a message on stderr and write
no output file. A fixed list of such rejections is checked as well.

Non-finite values: a fixed list of layers whose input or weights hold NaN,
+Inf or -Inf runs through every algorithm that supports each (auto, the
reference, direct, depthwise, fft). NaN, +Inf and -Inf must appear exactly
where PyTorch puts them (the outputs whose window holds such a value, and
with an infinite weight also those that reach zero padding, which PyTorch
multiplies like any input); the finite elements are compared as above.
Their gradients, with an infinite grad_output as well, are checked alike.

Reproducibility: case i uses numpy.random.default_rng([seed, i]), so a failing
case is re-run alone with --seed S --only I. The failing case's parameters,
its full command lines and its files (kept in a temporary directory) are
printed. The last line printed is "N passed, M failed"; the exit status is 1
if anything failed.
"""

import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("PyTorch is missing: install Debian's python3-torch (scripts/test does)")
    print("0 passed, 1 failed")
    sys.exit(1)

warnings.filterwarnings("ignore")  # 'same' with even kernels warns about a copy
torch.set_num_threads(1)

MODES = ("zeros", "reflect", "replicate", "circular")
RTOL = {"float32": 1e-5, "float64": 1e-12}
NP_DTYPE = {"float32": np.float32, "float64": np.float64}
CLI_TIMEOUT = 300


# --------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------

def resolve_padding(c):
    """(left, right) padding amounts of case c, PyTorch's rules."""
    kind = c["padding"][0]
    if kind == "int":
        return c["padding"][1], c["padding"][1]
    if kind == "pair":
        return c["padding"][1], c["padding"][2]
    if kind == "same":
        total = c["dilation"] * (c["k"] - 1)
        return total // 2, total - total // 2
    if kind == "causal":
        return c["dilation"] * (c["k"] - 1), 0
    return 0, 0  # valid


def padding_arg(c):
    kind = c["padding"][0]
    if kind == "int":
        return str(c["padding"][1])
    if kind == "pair":
        return "%d,%d" % (c["padding"][1], c["padding"][2])
    return kind


def out_length(c):
    left, right = resolve_padding(c)
    span = c["dilation"] * (c["k"] - 1) + 1
    return (c["length"] + left + right - span) // c["stride"] + 1


def draw_case(seed, idx):
    """One random configuration; deterministic in (seed, idx)."""
    rng = np.random.default_rng([seed, idx])

    def pick(values, p=None):
        return values[int(rng.choice(len(values), p=p))]

    def rint(lo, hi):  # inclusive
        return int(rng.integers(lo, hi + 1))

    large = rng.random() < 0.12
    kind = pick(["standard", "grouped", "depthwise", "separable"], p=[0.4, 0.2, 0.2, 0.2])
    cmax = 48 if large else 16
    c = {"idx": idx, "kind": kind}
    c["dtype"] = pick(["float32", "float64"])
    c["layout"] = pick(["ncl", "nlc"])
    r = rng.random()
    c["batch"] = None if r < 0.15 else 0 if r < 0.23 else rint(1, 4)
    if kind == "standard":
        c["cin"], c["cout"], c["groups"] = rint(1, cmax), rint(1, cmax), 1
    elif kind == "grouped":
        g = rint(2, 4)
        c["cin"], c["cout"], c["groups"] = g * rint(1, cmax // 4), g * rint(1, cmax // 4), g
    elif kind == "depthwise":
        cin = rint(1, cmax)
        c["cin"], c["cout"], c["groups"] = cin, cin * rint(1, 3), cin
    else:  # separable: depthwise (C_in -> C_mid = C_in * mult) then pointwise
        cin = rint(1, 12 if not large else 32)
        c["cin"], c["groups"] = cin, cin
        c["cmid"] = cin * rint(1, 3)
        c["cout"] = rint(1, cmax)
        c["pw_bias"] = bool(rng.random() < 0.6)
    c["k"] = rint(1, 9) if rng.random() < 0.88 else pick([11, 15, 16, 31, 33])
    c["stride"] = 1 if rng.random() < 0.45 else rint(2, 4)
    c["dilation"] = 1 if rng.random() < 0.45 else rint(2, 4)
    c["bias"] = bool(rng.random() < 0.7)
    c["mode"] = pick(list(MODES))
    length = rint(65, 300) if large else rint(1, 64)
    c["threads"] = pick([None, 1, 2])

    pk = pick(["int", "pair", "same", "valid", "causal"], p=[0.37, 0.25, 0.2, 0.12, 0.06])
    span = c["dilation"] * (c["k"] - 1) + 1
    if pk == "same":
        c["stride"] = 1
        c["padding"] = ("same",)
    elif pk in ("valid", "causal"):
        c["padding"] = (pk,)
    else:
        hi = max(3, span)
        left = rint(0, hi)
        right = rint(0, hi) if pk == "pair" else left
        c["padding"] = ("int", left) if pk == "int" else ("pair", left, right)
    c["length"] = length
    # Mostly legal draws: make reflect / circular amounts fit the input and the
    # kernel fit the padded input. About 5% are left as drawn (often illegal:
    # PyTorch rejects them and so must the CLI).
    if rng.random() < 0.95:
        left, right = resolve_padding(c)
        if c["mode"] == "reflect":
            c["length"] = max(c["length"], max(left, right) + 1)
        elif c["mode"] == "circular":
            c["length"] = max(c["length"], max(left, right), 1)
        left, right = resolve_padding(c)
        if c["length"] + left + right < span:
            c["length"] = span - left - right + rint(0, 8)
    # A few exactly at the limits: reflect pad = L - 1, circular pad = L.
    if c["padding"][0] in ("int", "pair") and rng.random() < 0.08:
        if c["mode"] == "reflect" and c["length"] >= 2:
            c["padding"] = ("int", c["length"] - 1)
        elif c["mode"] == "circular":
            c["padding"] = ("pair", c["length"], rint(0, c["length"]))
        left, right = resolve_padding(c)
        if c["length"] + left + right < span:
            c["padding"] = ("valid",)
            c["length"] = max(c["length"], span)
    # Let the plan choose (what users get), or force the reference oracle.
    c["algorithm"] = "reference" if rng.random() < 0.25 else None
    return c


def rejection_cases():
    """Configurations PyTorch rejects; the CLI must exit 2 on each."""
    base = {"kind": "standard", "dtype": "float64", "layout": "ncl", "batch": 2, "cin": 4,
            "cout": 6, "groups": 1, "k": 3, "stride": 1, "dilation": 1, "bias": True,
            "mode": "zeros", "length": 10, "padding": ("int", 1), "threads": None,
            "algorithm": None}

    def case(name, **kw):
        c = dict(base)
        c.update(kw)
        c["name"] = name
        return c

    return [
        case("same with stride 2", padding=("same",), stride=2),
        case("same with stride 3, reflect", padding=("same",), stride=3, mode="reflect"),
        case("reflect padding == L", mode="reflect", padding=("int", 10)),
        case("reflect padding > L on the right", mode="reflect", padding=("pair", 0, 11)),
        case("circular padding > L", mode="circular", padding=("pair", 11, 0)),
        case("groups do not divide in_channels", groups=3, cin=4, cout=6),
        case("groups do not divide out_channels", groups=2, cin=4, cout=5),
        case("groups = 0", groups=0),
        case("stride = 0", stride=0),
        case("dilation = 0", dilation=0),
        case("negative padding", padding=("int", -1)),
        case("kernel wider than padded input", k=13, padding=("int", 1)),
        case("dilated kernel wider than padded input", k=4, dilation=4, padding=("valid",)),
        case("weight in_channels mismatch", wshape=(6, 3, 3)),
        case("weight rank 2", wshape=(6, 4)),
        case("kernel size 0", wshape=(6, 4, 0)),
        case("bias of the wrong length", bshape=(5,)),
        case("weight dtype differs from input", wdtype="float32"),
        case("input rank 1", xshape=(10,)),
        case("input rank 4", xshape=(1, 2, 4, 10)),
        case("separable: pointwise weight wrong C_mid", kind="separable", cin=4, groups=4,
             cmid=8, cout=5, pw_bias=True, pwshape=(5, 7, 1)),
        case("separable: depthwise weight not (C_mid, 1, K)", kind="separable", cin=4,
             groups=4, cmid=8, cout=5, pw_bias=False, wshape=(8, 2, 3)),
    ]


# --------------------------------------------------------------------------
# Tensors and the PyTorch side
# --------------------------------------------------------------------------

def shapes(c):
    """Logical (NCL) shapes of the tensors of case c (explicit overrides win)."""
    if c["batch"] is None:
        x = (c["cin"], c["length"])
    else:
        x = (c["batch"], c["cin"], c["length"])
    s = {"x": c.get("xshape", x)}
    if c["kind"] == "separable":
        s["w"] = c.get("wshape", (c["cmid"], 1, c["k"]))
        s["b"] = c.get("bshape", (c["cmid"],)) if c["bias"] else None
        s["pw"] = c.get("pwshape", (c["cout"], c["cmid"], 1))
        s["pb"] = (c["cout"],) if c["pw_bias"] else None
    else:
        s["w"] = c.get("wshape", (c["cout"], max(c["cin"] // max(c["groups"], 1), 1), c["k"]))
        s["b"] = c.get("bshape", (c["cout"],)) if c["bias"] else None
    return s


def make_tensors(c, rng):
    t = {}
    for name, shape in shapes(c).items():
        if shape is not None:
            d = NP_DTYPE[c.get(name + "dtype", c["dtype"])]
            t[name] = rng.uniform(-1.0, 1.0, size=shape).astype(d)
    return t


def torch_forward(c, x, w, b, pw=None, pb=None):
    """PyTorch's answer for case c; x is (N, C, L) or (C, L) in NCL order."""
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(0)
    conv_out = c["cmid"] if c["kind"] == "separable" else c["cout"]
    if c["padding"][0] in ("pair", "causal"):
        left, right = resolve_padding(c)
        if c["mode"] == "zeros":
            xp = F.pad(x, (left, right), mode="constant", value=0.0)
        else:
            xp = F.pad(x, (left, right), mode=c["mode"])
        y = F.conv1d(xp, w, b, c["stride"], 0, c["dilation"], c["groups"])
    else:
        padding = c["padding"][1] if c["padding"][0] == "int" else c["padding"][0]
        m = torch.nn.Conv1d(c["cin"], conv_out, c["k"], stride=c["stride"], padding=padding,
                            dilation=c["dilation"], groups=c["groups"], bias=b is not None,
                            padding_mode=c["mode"], dtype=torch.float64)
        y = m._conv_forward(x, w, b)  # nn.Conv1d.forward with our weights
    if c["kind"] == "separable":
        y = F.conv1d(y, pw, pb)
    return y.squeeze(0) if unbatched else y


def to_torch(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64).copy())


def torch_reference(c, t, gy=None):
    """Forward (and, given gy, the gradients) in float64; numpy arrays, NCL."""
    names = [n for n in ("x", "w", "b", "pw", "pb") if n in t]
    if len({t[n].dtype for n in names}) > 1:  # let PyTorch judge mixed dtypes
        native = {n: torch.from_numpy(t[n].copy()) for n in names}
        torch_forward(c, native["x"], native["w"], native.get("b"), native.get("pw"),
                      native.get("pb"))
    tt = {n: to_torch(t[n]).requires_grad_(gy is not None) for n in names}
    y = torch_forward(c, tt["x"], tt["w"], tt.get("b"), tt.get("pw"), tt.get("pb"))
    out = {"y": y.detach().numpy()}
    if gy is not None:
        grads = torch.autograd.grad(y, [tt[n] for n in names], to_torch(gy), allow_unused=True)
        for n, g in zip(names, grads):
            out["g" + n] = np.zeros(t[n].shape) if g is None else g.numpy()
    return out


def to_file_layout(a, layout):
    """NCL -> the layout of the files (nlc swaps the last two axes)."""
    if layout == "nlc" and a.ndim >= 2:
        a = np.swapaxes(a, -1, -2)
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------
# The CLI side
# --------------------------------------------------------------------------

def write_apply_inputs(c, t, d):
    """Saves the case's arrays in directory d; returns (files, output path, apply args)."""
    files = {}
    for n, a in t.items():
        files[n] = os.path.join(d, n + ".npy")
        np.save(files[n], to_file_layout(a, c["layout"]) if n == "x" else a)
    y_path = os.path.join(d, "y.npy")
    args = ["apply", "--input", files["x"], "--weight", files["w"], "--output", y_path]
    for name, flag in (("b", "--bias"), ("pw", "--pointwise-weight"), ("pb", "--pointwise-bias")):
        if name in files:
            args += [flag, files[name]]
    return files, y_path, args


def backward_args(files):
    """`conv1d backward` on the saved arrays (gy included), and the flag that
    asks for each gradient the layer has, by gradient name."""
    args = ["backward", "--input", files["x"], "--weight", files["w"], "--grad-output",
            files["gy"]]
    wanted = {"gx": "--grad-input", "gw": "--grad-weight"}
    for name, flag, grad, grad_flag in (
            ("b", "--bias", "gb", "--grad-bias"),
            ("pw", "--pointwise-weight", "gpw", "--grad-pointwise-weight"),
            ("pb", "--pointwise-bias", "gpb", "--grad-pointwise-bias")):
        if name in files:
            args += [flag, files[name]]
            wanted[grad] = grad_flag
    return args, wanted


def conv_flags(c, algorithm=None):
    f = ["--stride", str(c["stride"]), "--padding", padding_arg(c), "--padding-mode", c["mode"],
         "--dilation", str(c["dilation"]), "--groups", str(c["groups"]), "--layout", c["layout"]]
    if c["threads"] is not None:
        f += ["--threads", str(c["threads"])]
    algorithm = algorithm or c.get("algorithm")
    if algorithm:
        f += ["--algorithm", algorithm]
    return f


def read_npy(path, dtype):
    """Load a .npy the CLI wrote, insisting on little-endian, C order, dtype."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dt = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dt = np.lib.format.read_array_header_2_0(fh)
    if fortran:
        raise ValueError("%s is in Fortran order" % path)
    want = np.dtype(NP_DTYPE[dtype]).newbyteorder("<")
    if dt != want:
        raise ValueError("%s has dtype %s, expected %s" % (path, dt.str, want.str))
    a = np.load(path)
    if a.shape != shape:
        raise ValueError("%s: inconsistent shape" % path)
    return a


def compare(name, got, want, dtype, stats=None):
    """None if got matches want (see the module docstring), else a message.
    Records the relative error max|a-b| / max|b| in stats."""
    if got.shape != want.shape:
        return "%s: shape %s, expected %s" % (name, got.shape, want.shape)
    if got.size == 0:
        return None
    g = got.astype(np.float64)
    if not np.all(np.isfinite(g)):
        return "%s: contains non-finite values" % name
    scale = float(np.max(np.abs(want)))
    diff = np.abs(g - want)
    err = float(np.max(diff))
    if stats is not None and scale > 0:
        stats.update(dtype, err / scale)
    if err <= RTOL[dtype] * scale:
        return None
    at = np.unravel_index(int(np.argmax(diff)), diff.shape)
    bad = int(np.count_nonzero(diff > RTOL[dtype] * scale))
    return ("%s: max |a-b| = %.3e > %.0e * max|b| (max|b| = %.3e, relative %.3e); "
            "%d of %d elements off; worst at %s: got %.17g, expected %.17g"
            % (name, err, RTOL[dtype], scale, err / scale if scale else float("inf"), bad,
               diff.size, tuple(int(i) for i in at), g[at], want[at]))


def compare_non_finite(name, got, want, dtype):
    """None if got has NaN, +Inf and -Inf exactly where want has them and
    matches it elsewhere (as compare() does), else a message."""
    if got.shape != want.shape:
        return "%s: shape %s, expected %s" % (name, got.shape, want.shape)
    g = got.astype(np.float64)
    for label, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        off = test(g) != test(want)
        if np.any(off):
            at = tuple(int(i) for i in np.argwhere(off)[0])
            return ("%s: %d elements differ in being %s (PyTorch %d, conv1d %d); first at %s: "
                    "got %r, expected %r" % (name, int(np.count_nonzero(off)), label,
                                             int(np.count_nonzero(test(want))),
                                             int(np.count_nonzero(test(g))), at, g[at], want[at]))
    finite = np.isfinite(want)
    if not np.any(finite):
        return None
    return compare(name, g[finite], want[finite], dtype)


def non_finite_cases():
    """Layers whose input or weights hold NaN or +-Inf, each with the
    algorithms that support it. PyTorch multiplies zero padding like any
    input (an infinite weight makes the outputs that reach padding NaN) and
    makes non-finite only the outputs whose window holds such a value; so
    must every algorithm, the FFT included."""
    base = {"kind": "standard", "dtype": "float32", "layout": "ncl", "batch": 2, "cin": 4,
            "cout": 6, "groups": 1, "k": 64, "stride": 1, "dilation": 1, "bias": True,
            "mode": "zeros", "length": 300, "padding": ("int", 20), "threads": None,
            "algorithm": None}

    def case(name, algorithms, poison, **kw):
        c = dict(base)
        c.update(kw)
        c["name"], c["algorithms"], c["poison"] = name, algorithms, poison
        return c

    dense = ["auto", "reference", "direct", "fft"]
    depthwise = dense + ["depthwise"]
    return [
        case("NaN and +-Inf in the input, K=64", dense, {"x": [np.nan, np.inf, -np.inf]}),
        case("+Inf weight, zero padding", dense, {"w": [np.inf]}),
        case("NaN weight, float64, NLC", dense, {"w": [np.nan]}, dtype="float64",
             layout="nlc"),
        case("+Inf weight, K=3 (padding multiplied)", ["auto", "reference", "direct"],
             {"w": [np.inf]}, k=3, length=40, padding=("int", 1)),
        case("depthwise, reflect, NaN input and -Inf weight", depthwise,
             {"x": [np.nan], "w": [-np.inf]}, cin=5, cout=5, groups=5, k=31, mode="reflect",
             padding=("int", 15), length=200),
        case("depthwise multiplier, Inf input", depthwise, {"x": [np.inf, np.inf]}, cin=3,
             cout=6, groups=3, k=33, padding=("same",), length=150),
        case("grouped, circular, NLC, Inf input", dense, {"x": [-np.inf]}, cin=6, cout=6,
             groups=2, k=40, mode="circular", padding=("int", 20), layout="nlc", stride=2),
    ]


class WorstError:
    """The largest relative error seen per dtype (updated from worker threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.worst = {}

    def update(self, dtype, rel):
        with self.lock:
            self.worst[dtype] = max(self.worst.get(dtype, 0.0), rel)


class Runner:
    def __init__(self, cli, algorithm, workdir, separable_backward):
        self.cli = cli
        self.algorithm = algorithm
        self.workdir = workdir
        self.separable_backward = separable_backward
        self.stats = WorstError()

    def run(self, args):
        cmd = [self.cli] + args
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            return cmd, None, "timed out after %d s" % CLI_TIMEOUT
        return cmd, p.returncode, p.stderr

    # ---- one valid configuration ------------------------------------------
    def check_case(self, c):
        """Returns (ok, message, commands, directory)."""
        d = tempfile.mkdtemp(prefix="case%04d_" % c["idx"], dir=self.workdir)
        rng = np.random.default_rng([c["seed"], c["idx"], 1])
        t = make_tensors(c, rng)
        cmds = []
        try:
            ref = torch_reference(c, t)
        except Exception as e:  # PyTorch rejects it: so must the CLI
            return self.check_rejected(c, t, d, "PyTorch: %s" % str(e).splitlines()[0])
        if "name" in c:
            return False, "PyTorch accepts this configuration (test bug)", cmds, d

        files, y_path, args = write_apply_inputs(c, t, d)
        cmd, rc, err = self.run(args + conv_flags(c, self.algorithm))
        cmds.append(cmd)
        if rc != 0:
            return False, "apply exited with %s: %s" % (rc, err.strip()), cmds, d
        problems = []
        try:
            y = read_npy(y_path, c["dtype"])
            msg = compare("output", y, to_file_layout(ref["y"], c["layout"]), c["dtype"],
                          self.stats)
            if msg:
                problems.append(msg)
        except Exception as e:
            problems.append("output: %s" % e)

        if c["kind"] != "separable" or self.separable_backward:
            gy = rng.uniform(-1.0, 1.0, size=ref["y"].shape).astype(NP_DTYPE[c["dtype"]])
            grads = torch_reference(c, t, gy)
            files["gy"] = os.path.join(d, "gy.npy")
            np.save(files["gy"], to_file_layout(gy, c["layout"]))
            args, wanted = backward_args(files)
            # Ask for a random non-empty subset of the gradients.
            keep = [n for n in wanted if rng.random() < 0.8] or [list(wanted)[0]]
            for n in keep:
                args += [wanted[n], os.path.join(d, n + ".npy")]
            cmd, rc, err = self.run(args + conv_flags(c, self.algorithm))
            cmds.append(cmd)
            if rc != 0:
                problems.append("backward exited with %s: %s" % (rc, err.strip()))
            else:
                for n in wanted:
                    path = os.path.join(d, n + ".npy")
                    if n not in keep:
                        if os.path.exists(path):
                            problems.append("%s written though not asked for" % n)
                        continue
                    try:
                        got = read_npy(path, c["dtype"])
                        want = grads[n]
                        if n == "gx":
                            want = to_file_layout(want, c["layout"])
                        msg = compare(wanted[n][2:], got, want, c["dtype"], self.stats)
                        if msg:
                            problems.append(msg)
                    except Exception as e:
                        problems.append("%s: %s" % (wanted[n][2:], e))
        if problems:
            return False, "; ".join(problems), cmds, d
        shutil.rmtree(d, ignore_errors=True)
        return True, "", cmds, None

    # ---- non-finite values ------------------------------------------------
    def check_non_finite(self, c):
        d = tempfile.mkdtemp(prefix="nonfinite%04d_" % c["idx"], dir=self.workdir)
        rng = np.random.default_rng([c["seed"], c["idx"], 2])
        t = make_tensors(c, rng)
        for name, values in c["poison"].items():
            flat = t[name].reshape(-1)
            # Near both ends too, where padding repeats them.
            spots = [0, flat.size - 1] + list(rng.integers(0, flat.size, size=len(values)))
            for value, at in zip(values, spots):
                flat[at] = value
        want = to_file_layout(torch_reference(c, t)["y"], c["layout"])
        files, y_path, args = write_apply_inputs(c, t, d)
        problems, cmds = [], []
        for algorithm in c["algorithms"]:
            if os.path.exists(y_path):
                os.remove(y_path)
            cmd, rc, err = self.run(args + conv_flags(c, algorithm))
            cmds.append(cmd)
            if rc != 0:
                problems.append("%s: apply exited with %s: %s" % (algorithm, rc, err.strip()))
                continue
            msg = compare_non_finite(algorithm, read_npy(y_path, c["dtype"]), want, c["dtype"])
            if msg:
                problems.append(msg)
        # Backward, with an infinite gradient too: PyTorch multiplies the
        # zero padding in the weight gradient as well.
        gy = rng.uniform(-1.0, 1.0, size=want.shape).astype(NP_DTYPE[c["dtype"]])
        gy.reshape(-1)[int(rng.integers(0, gy.size))] = np.inf
        gy.reshape(-1)[0] = -np.inf
        gy_ncl = np.swapaxes(gy, -1, -2) if c["layout"] == "nlc" else gy
        grads = torch_reference(c, t, np.ascontiguousarray(gy_ncl))
        files["gy"] = os.path.join(d, "gy.npy")
        np.save(files["gy"], gy)
        args, wanted = backward_args(files)
        for n, flag in wanted.items():
            args += [flag, os.path.join(d, n + ".npy")]
        cmd, rc, err = self.run(args + conv_flags(c))
        cmds.append(cmd)
        if rc != 0:
            problems.append("backward exited with %s: %s" % (rc, err.strip()))
        else:
            for n, flag in wanted.items():
                want_grad = grads[n]
                if n == "gx":
                    want_grad = to_file_layout(want_grad, c["layout"])
                msg = compare_non_finite(flag[2:], read_npy(os.path.join(d, n + ".npy"),
                                                             c["dtype"]), want_grad, c["dtype"])
                if msg:
                    problems.append(msg)
        if problems:
            return False, "; ".join(problems), cmds, d
        shutil.rmtree(d, ignore_errors=True)
        return True, "", cmds, None

    # ---- a configuration PyTorch rejects ----------------------------------
    def check_rejected(self, c, t, d, why):
        files, y_path, args = write_apply_inputs(c, t, d)
        cmd, rc, err = self.run(args + conv_flags(c, self.algorithm))
        problems = []
        if rc != 2:
            problems.append("apply exited with %s, expected 2 (%s)" % (rc, why))
        if rc is not None and not err.strip():
            problems.append("no message on stderr")
        elif rc is not None and len(err.strip().splitlines()) != 1:
            problems.append("message is not one line: %r" % err)
        if os.path.exists(y_path):
            problems.append("output file written")
        if problems:
            return False, "; ".join(problems), [cmd], d
        shutil.rmtree(d, ignore_errors=True)
        return True, "rejected: " + err.strip(), [cmd], None


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def describe(c):
    keys = ["idx", "kind", "dtype", "layout", "batch", "cin", "cmid", "cout", "length", "k",
            "stride", "dilation", "groups", "bias", "pw_bias", "padding", "mode", "threads",
            "algorithm", "name", "wshape", "bshape", "xshape", "pwshape", "wdtype"]
    return json.dumps({k: c[k] for k in keys if k in c})


def coverage(cases):
    """Fails loudly if the drawn cases miss a category the test promises."""
    need = {
        "dtype": {"float32", "float64"},
        "layout": {"ncl", "nlc"},
        "mode": set(MODES),
        "kind": {"standard", "grouped", "depthwise", "separable"},
        "padding": {"int", "pair", "same", "valid", "causal"},
        "batch": {"unbatched", "zero", "one+"},
        "bias": {True, False},
        "stride": {1, 2, 3, 4},
        "dilation": {1, 2, 3, 4},
        "depth_multiplier>1": {True},
    }
    seen = {k: set() for k in need}
    for c in cases:
        seen["dtype"].add(c["dtype"])
        seen["layout"].add(c["layout"])
        seen["mode"].add(c["mode"])
        seen["kind"].add(c["kind"])
        seen["padding"].add(c["padding"][0])
        seen["batch"].add("unbatched" if c["batch"] is None else "zero" if c["batch"] == 0
                          else "one+")
        seen["bias"].add(c["bias"])
        seen["stride"].add(c["stride"])
        seen["dilation"].add(c["dilation"])
        if c["kind"] == "depthwise" and c["cout"] > c["cin"]:
            seen["depth_multiplier>1"].add(True)
    return {k: sorted(map(str, need[k] - seen[k])) for k in need if need[k] - seen[k]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", required=True, help="path of the conv1d program")
    ap.add_argument("--cases", type=int, default=300, help="number of legal configurations")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", type=int, action="append", help="run only case index I")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once")
    ap.add_argument("--algorithm", default=None, help="pass --algorithm NAME to the CLI")
    ap.add_argument("--no-separable-backward", action="store_true",
                    help="skip backward for separable cases")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()

    cli = os.path.abspath(opts.cli)
    if not os.access(cli, os.X_OK):
        print("not an executable: %s" % cli)
        print("0 passed, 1 failed")
        return 1
    print("torch_compare: seed %d, %d cases, cli %s, torch %s, numpy %s"
          % (opts.seed, opts.cases, cli, torch.__version__, np.__version__), flush=True)
    workdir = tempfile.mkdtemp(prefix="conv1d_torch_compare_")
    runner = Runner(cli, opts.algorithm, workdir, not opts.no_separable_backward)

    # Draw cases until `cases` of them are legal for PyTorch; the illegal ones
    # drawn on the way are checked as rejections.
    cases, illegal, idx = [], [], 0
    wanted = set(opts.only) if opts.only else None
    while len(cases) < opts.cases and idx < 50 * opts.cases + 100:
        c = draw_case(opts.seed, idx)
        c["seed"] = opts.seed
        idx += 1
        if wanted is not None and c["idx"] not in wanted:
            continue
        t = make_tensors(c, np.random.default_rng([opts.seed, c["idx"], 1]))
        try:
            torch_reference(c, t)
            cases.append(c)
        except Exception:
            illegal.append(c)
        if wanted is not None and len(cases) + len(illegal) == len(wanted):
            break
    rejects, non_finite = [], []
    if wanted is None:
        for i, c in enumerate(rejection_cases()):
            c["idx"], c["seed"] = 100000 + i, opts.seed
            rejects.append(c)
        for i, c in enumerate(non_finite_cases()):
            c["idx"], c["seed"] = 200000 + i, opts.seed
            if opts.algorithm:
                if opts.algorithm not in c["algorithms"]:
                    continue
                c["algorithms"] = [opts.algorithm]
            non_finite.append(c)
        missing = coverage(cases)
        if missing and opts.cases >= 300:
            print("FAIL coverage: the drawn cases miss %s" % missing)
            print("0 passed, 1 failed")
            return 1

    start = time.time()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = [(c, pool.submit(runner.check_case, c)) for c in cases + illegal + rejects]
        futures += [(c, pool.submit(runner.check_non_finite, c)) for c in non_finite]
        for c, fut in futures:
            try:
                ok, msg, cmds, d = fut.result()
            except Exception as e:  # a bug in this script counts as a failure
                ok, msg, cmds, d = False, "test error: %r" % e, [], None
            results.append(ok)
            if not ok:
                print("FAIL case %d (seed %d): %s" % (c["idx"], opts.seed, describe(c)))
                print("  %s" % msg)
                for cmd in cmds:
                    print("  $ %s" % shlex.join(cmd))
                if d:
                    print("  files kept in %s" % d)
                sys.stdout.flush()
            elif opts.verbose:
                print("ok case %d: %s %s" % (c["idx"], describe(c), msg))
    elapsed = time.time() - start
    passed = sum(results)
    failed = len(results) - passed
    if failed == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d legal configurations, %d illegal draws, %d fixed rejections, %d non-finite "
          "layers; %.1f s" % (len(cases), len(illegal), len(rejects), len(non_finite), elapsed))
    print("worst relative error max|a-b|/max|b|: %s" % ", ".join(
        "%s %.2e (limit %.0e)" % (k, v, RTOL[k]) for k, v in sorted(runner.stats.worst.items())))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
