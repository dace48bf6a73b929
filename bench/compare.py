#!/usr/bin/env python3
"""compare.py OUT.safetensors REF.safetensors NAME [TOL]: max |out - ref| / max |ref| of tensor NAME (F32) and
the argmax agreement over the last axis; prints one line, "ok" or "FAIL" against TOL (default 1e-3), exit 1 on
FAIL. Pure Python (no numpy / torch), so it runs on the CPU machine and the GPU machine alike.

    compare.py ids.safetensors --write-ids 1,2,3   writes input_ids I64 [1, n] (for kiln run --inputs)
"""
import array
import json
import struct
import sys


def read(path, name):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        if name not in header:
            sys.exit(f'compare.py: {path}: no tensor {name}')
        t = header[name]
        if t['dtype'] != 'F32':
            sys.exit(f'compare.py: {path}: {name} is {t["dtype"]}, expected F32')
        begin, end = t['data_offsets']
        f.seek(8 + n + begin)
        values = array.array('f')
        values.frombytes(f.read(end - begin))
        return t['shape'], values


def write_ids(path, ids):
    data = struct.pack('<%dq' % len(ids), *ids)
    header = json.dumps({'input_ids': {'dtype': 'I64', 'shape': [1, len(ids)], 'data_offsets': [0, len(data)]}})
    header += ' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header.encode() + data)


def main():
    if len(sys.argv) == 4 and sys.argv[2] == '--write-ids':
        return write_ids(sys.argv[1], [int(x) for x in sys.argv[3].split(',')])
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    tol = float(sys.argv[4]) if len(sys.argv) == 5 else 1e-3
    shape, out = read(sys.argv[1], sys.argv[3])
    ref_shape, ref = read(sys.argv[2], sys.argv[3])
    if shape != ref_shape:
        sys.exit(f'compare.py: shapes differ: {shape} vs {ref_shape}')
    max_ref = max((abs(v) for v in ref), default=0.0)
    max_err = max((abs(a - b) for a, b in zip(out, ref)), default=0.0)
    rel = max_err / max_ref if max_ref > 0 else max_err
    last = shape[-1] if shape else 1
    rows = len(ref) // last if last else 0
    same = sum(1 for r in range(rows)
               if max(range(last), key=lambda i: out[r * last + i]) == max(range(last), key=lambda i: ref[r * last + i]))
    ok = rel <= tol and rel == rel
    print(f'max|out-ref|/max|ref| {rel:.2e}, argmax {same}/{rows} {"ok" if ok else "FAIL"} (bound {tol:g})')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
