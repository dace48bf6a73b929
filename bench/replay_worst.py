#!/usr/bin/env python3
"""The case count and worst relative error per kernel of a kiln_spirv_replay log (bench/*-gpu.sh), or with
--blocks per cooperative-matrix block of the GEMM cases ("gemv / scalar" for the kernels without one).

usage: replay_worst.py [--blocks] LOG
"""
import re
import sys


def block_of(kernel):
    block = re.search(r'coopmat(\d+x\d+x\d+(?:x2)?)', kernel)
    return block[1] if block else ('gemv / scalar' if 'coopmat' not in kernel else 'coopmat')


def main():
    blocks = sys.argv[1:2] == ['--blocks']
    if len(sys.argv) != 2 + blocks:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    line_re = r'(PASS|FAIL) (\S+) M=.* rel error (\S+)' if blocks else r'(PASS|FAIL) (\S+) .*rel error (\S+)'
    worst = {}
    for line in open(sys.argv[-1]):
        m = re.match(line_re, line)
        if m:
            key = block_of(m[2]) if blocks else m[2]
            err = float(m[3]) if m[3] != 'nan' else float('inf')
            n, w = worst.get(key, (0, 0.0))
            worst[key] = (n + 1, max(w, err))
    for key, (n, w) in sorted(worst.items()):
        if blocks:
            print(f'  {key:>14}: {n:3d} cases, worst rel error {w:.3g}')
        else:
            print(f'  {key}: {n} cases, worst rel error {w:.3g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
