"""Times PyTorch's conv1d on the same problems as `conv1d bench --compare`.

Line protocol on stdin/stdout, so the benchmark can interleave rounds of
conv1d, PyTorch and oneDNN in one run:
  out: ready   (once, when torch is loaded)
  in:  <problem descriptor> <threads> <repetitions>
  out: <median milliseconds> torch-<version>   or   unsupported <why>
Data is contiguous NCL (or NLC viewed as NCL through a permute, which is what
a PyTorch user with channels-last data has to do). A separable layer's
descriptor is "<depthwise>+<pointwise>": the two convolutions run back to
back, as torch.nn.Sequential of two Conv1d layers would. The suffix
"backward" times the gradients of the input, weight and bias from a given
grad_output (aten's convolution_backward, what autograd calls after the
forward; padding modes other than zeros pad a copy of the input first and
leave the padding's own backward out).
"""
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

FIELDS = re.compile(r"(mb|ic|oc|iw|kw|sw|dl|pl|pr|g)(\d+)")


def parse(descriptor):
    numbers, *suffixes = descriptor.split("_")
    p = {key: int(value) for key, value in FIELDS.findall(numbers)}
    p["mode"] = next((s for s in suffixes if s in ("reflect", "replicate", "circular")), "zeros")
    p["bias"] = "nobias" not in suffixes
    p["nlc"] = "nlc" in suffixes
    p["dtype"] = torch.float64 if "f64" in suffixes else torch.float32
    p["backward"] = "backward" in suffixes
    return p


def make_input(p):
    batch, cin, length, dtype = p["mb"], p["ic"], p["iw"], p["dtype"]
    if p["nlc"]:
        return torch.rand(batch, length, cin, dtype=dtype).permute(0, 2, 1)
    return torch.rand(batch, cin, length, dtype=dtype)


def make_conv(p):
    """The convolution of one descriptor as a function of its input."""
    cin, cout, groups, kernel = p["ic"], p["oc"], p.get("g", 1), p["kw"]
    dtype = p["dtype"]
    w = torch.rand(cout, cin // groups, kernel, dtype=dtype)
    b = torch.rand(cout, dtype=dtype) if p["bias"] else None
    left, right = p.get("pl", 0), p.get("pr", 0)
    stride, dilation = p.get("sw", 1), p.get("dl", 1)
    if p["mode"] == "zeros" and left == right:
        return lambda x: F.conv1d(x, w, b, stride, left, dilation, groups)
    mode = "constant" if p["mode"] == "zeros" else p["mode"]
    return lambda x: F.conv1d(F.pad(x, (left, right), mode=mode), w, b, stride, 0, dilation, groups)


def make_backward(p):
    """The backward pass of one descriptor's convolution."""
    cin, cout, groups, kernel = p["ic"], p["oc"], p.get("g", 1), p["kw"]
    dtype = p["dtype"]
    left, right = p.get("pl", 0), p.get("pr", 0)
    stride, dilation = p.get("sw", 1), p.get("dl", 1)
    x = make_input(p)
    padding = left
    if p["mode"] != "zeros" or left != right:
        mode = "constant" if p["mode"] == "zeros" else p["mode"]
        x = F.pad(x, (left, right), mode=mode)
        padding = 0
    w = torch.rand(cout, cin // groups, kernel, dtype=dtype)
    out_length = (x.shape[2] + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    grad_output = torch.rand(x.shape[0], cout, out_length, dtype=dtype)
    bias_sizes = [cout] if p["bias"] else None
    mask = [True, True, p["bias"]]
    return lambda: torch.ops.aten.convolution_backward(
        grad_output, x, w, bias_sizes, [stride], [padding], [dilation], False, [0], groups, mask)


def make_runner(descriptor):
    parts = [parse(part) for part in descriptor.split("+")]
    if any(part["backward"] for part in parts):
        if len(parts) != 1:
            raise ValueError("backward is timed on single convolutions")
        return make_backward(parts[0])
    x = make_input(parts[0])
    convs = [make_conv(p) for p in parts]
    if len(convs) == 1:
        return lambda: convs[0](x)
    return lambda: convs[1](convs[0](x))


def main():
    runners = {}
    print("ready", flush=True)
    with torch.no_grad():
        for line in sys.stdin:
            words = line.split()
            if len(words) != 3:
                continue
            descriptor, threads, repetitions = words[0], int(words[1]), int(words[2])
            try:
                torch.set_num_threads(threads)
                key = (descriptor, threads)
                if key not in runners:
                    runners[key] = make_runner(descriptor)
                    runners[key]()  # warm-up: oneDNN primitive creation, page faults
                run = runners[key]
                times = []
                for _ in range(repetitions):
                    start = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - start) * 1e3)
                print(f"{statistics.median(times)} torch-{torch.__version__}", flush=True)
            except Exception as error:  # report, keep serving
                message = str(error).replace("\n", " ")
                print(f"unsupported {message}", flush=True)


if __name__ == "__main__":
    main()
