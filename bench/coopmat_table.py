#!/usr/bin/env python3
"""TFLOP/s of each matmul shape per configuration, from `KILN_PROFILE=1 kiln bench -p M -n 0` outputs.

usage: coopmat_table.py M LABEL=PROFILE.txt [LABEL=PROFILE.txt ...]

Reads the per-kernel lines of the Vulkan profile ("  27.73%  21.452 ms/run  matmul_..._n5632k2048_f32 x44"):
the time per dispatch is ms/run over the count, the work 2 M N K. Prints one row per label and one column
per N x K (TFLOP/s and ms per dispatch) with the whole prefill's GPU ms, then the best label per shape.
"""
import re
import sys

LINE = re.compile(r'^\s*[\d.]+%\s+([\d.]+) ms/run\s+(matmul\S*_n(\d+)k(\d+)\S*) x(\d+)')
TOTAL = re.compile(r'GPU ([\d.]+) ms per run')


def read(path):
    shapes, total = {}, None
    for line in open(path, errors='replace'):
        m = LINE.match(line)
        if m:
            ms, name, n, k, count = float(m[1]), m[2], int(m[3]), int(m[4]), int(m[5])
            shapes[(n, k)] = (ms / count, name)
        t = TOTAL.search(line)
        if t:
            total = float(t[1])
    return shapes, total


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    m = int(sys.argv[1])
    runs = []
    for arg in sys.argv[2:]:
        label, _, path = arg.partition('=')
        try:
            runs.append((label, *read(path)))
        except OSError as e:
            print(f'{label}: {e}', file=sys.stderr)
    shapes = sorted({s for _, table, _ in runs for s in table}, key=lambda s: -s[0] * s[1])
    width = max(12, max(len(label) for label, _, _ in runs))
    print(f'TFLOP/s (ms per dispatch) at M = {m}; prefill: the whole run\'s GPU ms')
    print(f'{"N x K":<{width}} ' + ' '.join(f'{f"{n}x{k}":>15}' for n, k in shapes) + f' {"prefill":>9}')
    best = {}
    for label, table, total in runs:
        cells = []
        for n, k in shapes:
            if (n, k) not in table:
                cells.append(f'{"-":>15}')
                continue
            ms = table[(n, k)][0]
            tflops = 2.0 * m * n * k / (ms * 1e-3) / 1e12
            cells.append(f'{tflops:6.1f} ({ms:6.3f})')
            if (n, k) not in best or tflops > best[(n, k)][1]:
                best[(n, k)] = (label, tflops)
        print(f'{label:<{width}} ' + ' '.join(cells) + f' {(f"{total:.3f}" if total else "-"):>9}')
    print(f'{"best":<{width}} ' + ' '.join(f'{best[s][0] if s in best else "-":>15}' for s in shapes))
    return 0


if __name__ == '__main__':
    sys.exit(main())
