#!/usr/bin/env python3
"""Draws a suite of random but plausible Conv1d layers for `conv1d bench --suite`.

Layers outside the built-in suite: depthwise (sometimes with a depth
multiplier), grouped and standard, 1-768 channels, K = 1..128, strides 1-5,
dilations up to 16, lengths 100-16000, batch 1-8, padding 0, 'same' or half
the kernel's span, and 2 MFLOP to 3 GFLOP each. The same seed gives the same
layers, so a comparison can be repeated:

    bench/random_suite.py --seed 1 --layers 120 > random.csv
    build/release/tools/conv1d/conv1d bench --suite random.csv --compare --threads 1

bench/random.csv holds seeds 1 and 2, 120 layers each.
"""
import argparse
import random

CHANNELS = [1, 2, 3, 8, 12, 16, 24, 32, 48, 64, 80, 96, 128, 192, 256, 384, 512, 768]
HEADER = "name,batch,in_channels,out_channels,length,kernel_size,stride,padding,dilation,groups"


def draw(rng, prefix, count):
    """Yields `count` CSV rows named {prefix}{index}_{kind}."""
    index = 0
    while index < count:
        kind = rng.randrange(4)
        c = rng.choice(CHANNELS)
        if kind == 0:  # depthwise, one in five with a depth multiplier
            groups, cin = c, c
            cout = c * (rng.choice([2, 3, 4]) if rng.randrange(5) == 0 else 1)
        elif kind == 1:  # grouped
            groups = rng.choice([2, 4, 8, 16])
            cin = groups * max(1, c // 8)
            cout = groups * max(1, rng.choice(CHANNELS) // 8)
        else:  # standard
            groups, cin, cout = 1, c, rng.choice(CHANNELS[3:])
        k = rng.choice([1, 2, 3, 3, 3, 4, 5, 7, 9, 11, 15, 31, 64, 128])
        stride = rng.choice([1, 1, 1, 1, 2, 2, 3, 4, 5])
        dilation = rng.choice([1, 1, 1, 2, 4, 8, 16]) if stride == 1 else 1
        length = rng.choice([100, 256, 500, 1000, 2000, 3000, 4096, 8000, 16000])
        batch = rng.choice([1, 1, 1, 2, 4, 8])
        padding = rng.choice(["0", "same" if stride == 1 else "0", str((k - 1) * dilation // 2)])
        both_sides = 2 * int(padding) if padding.isdigit() else 0
        if (k - 1) * dilation + 1 > length + both_sides:
            continue
        flops = 2 * batch * cout * (cin // groups) * k * length / stride
        if flops < 2e6 or flops > 3e9:
            continue
        name = f"{prefix}{index}_{['dw', 'grp', 'dense', 'dense'][kind]}"
        yield f"{name},{batch},{cin},{cout},{length},{k},{stride},{padding},{dilation},{groups}"
        index += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append",
                        help="seed of one set of layers (repeatable; default 1)")
    parser.add_argument("--layers", type=int, default=120, help="layers per seed")
    args = parser.parse_args()
    print(HEADER)
    for seed in args.seed or [1]:
        for row in draw(random.Random(seed), f"s{seed}_r", args.layers):
            print(row)


if __name__ == "__main__":
    main()
