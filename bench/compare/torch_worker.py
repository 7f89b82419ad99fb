"""Times PyTorch's conv1d on the same problems as `conv1d bench --compare`.

Line protocol on stdin/stdout, so the benchmark can interleave rounds of
conv1d, PyTorch and oneDNN in one run:
  out: ready   (once, when torch is loaded)
  in:  <problem descriptor> <threads> <repetitions>
  out: <median milliseconds> torch-<version>   or   unsupported <why>
Data is contiguous NCL (or NLC viewed as NCL through a permute, which is what
a PyTorch user with channels-last data has to do). A separable layer's
descriptor is "<depthwise>+<pointwise>": the two convolutions run back to
back, as torch.nn.Sequential of two Conv1d layers would.
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


def make_runner(descriptor):
    parts = [parse(part) for part in descriptor.split("+")]
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
