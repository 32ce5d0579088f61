# Data movement kernels (viper, allocation-free): every op that only moves bytes
# (RESHAPE, CONCATENATION, STRIDED_SLICE, SPLIT_V, READ_VARIABLE, ASSIGN_VARIABLE) is a
# list of contiguous runs worked out at prepare time; QUANTIZE and LOGISTIC on 8-bit
# tensors are 256-entry tables worked out at prepare time.
import array

import micropython


def runs(triples):
    """An int32 run table from (src_offset, dst_offset, length) triples, merging runs that
    continue each other."""
    merged = []
    for src, dst, n in triples:
        if n <= 0:
            continue
        if merged and merged[-3] + merged[-1] == src and merged[-2] + merged[-1] == dst:
            merged[-1] += n
        else:
            merged.extend((src, dst, n))
    return array.array("i", merged)


@micropython.viper
def copy_runs(dst, src, table, n_runs: int):
    """dst[d:d+n] = src[s:s+n] for each (s, d, n) run of the table."""
    d = ptr8(dst)
    s = ptr8(src)
    t = ptr32(table)
    r = 0
    while r < n_runs:
        si = t[3 * r]
        di = t[3 * r + 1]
        end = di + t[3 * r + 2]
        while di < end:
            d[di] = s[si]
            di += 1
            si += 1
        r += 1


@micropython.viper
def map_bytes(dst, src, lut, n: int):
    """dst[i] = lut[src[i]] for n bytes (an 8-bit elementwise op as a table)."""
    d = ptr8(dst)
    s = ptr8(src)
    t = ptr8(lut)
    i = 0
    while i < n:
        d[i] = t[s[i]]
        i += 1
