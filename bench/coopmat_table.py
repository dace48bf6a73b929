#!/usr/bin/env python3
"""TFLOP/s of each matmul shape per configuration, from `KILN_PROFILE=1 kiln bench -p M -n 0` outputs.

usage: coopmat_table.py M LABEL=PROFILE.txt [LABEL=PROFILE.txt ...]

Reads the per-kernel lines of the Vulkan profile ("  27.73%  21.452 ms/run  matmul_..._n5632k2048_f32 x44"):
the time per dispatch is ms/run over the count, the work 2 M N K. Prints one row per N x K and one column per
label (TFLOP/s, and ms per dispatch), then the row's best label, and the whole prefill's GPU ms per label.
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
    width = max(16, max(len(label) for label, _, _ in runs))
    print(f'{"M x N x K":>18} ' + ' '.join(f'{label:>{width}}' for label, _, _ in runs) + '  best')
    for n, k in shapes:
        cells, best = [], None
        for label, table, _ in runs:
            if (n, k) not in table:
                cells.append(f'{"-":>{width}}')
                continue
            ms = table[(n, k)][0]
            tflops = 2.0 * m * n * k / (ms * 1e-3) / 1e12
            cells.append(f'{tflops:7.1f} {ms:6.3f}ms'.rjust(width))
            if best is None or tflops > best[1]:
                best = (label, tflops)
        print(f'{m:>5} x{n:>6} x{k:>5} ' + ' '.join(cells) + f'  {best[0] if best else "-"}')
    print(f'{"prefill GPU ms":>18} ' + ' '.join(f'{(f"{t:.3f}" if t else "-"):>{width}}' for _, _, t in runs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
