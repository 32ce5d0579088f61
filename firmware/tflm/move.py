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
def copy_runs(dst: ptr32, src: ptr32, table, n_runs: int):
    """dst[d:d+n] = src[s:s+n] for each (s, d, n) run of the table; a run whose addresses
    and length are multiples of 4 moves 16 bytes per step (the ESP32-S3 faults on
    unaligned 32-bit access, so only aligned runs do). dst and src are locals 0 and 1,
    which mpy-cross keeps in registers: they walk the words."""
    d_addr = int(uint(dst))
    s_addr = int(uint(src))
    t = ptr32(table)
    r = 0
    while r < n_runs:
        sp = s_addr + t[0]
        dp = d_addr + t[1]
        n = t[2]
        t = ptr32(uint(t) + 12)
        r += 1
        if ((sp | dp | n) & 3) == 0:
            src = ptr32(sp)
            dst = ptr32(dp)
            end = sp + (n & ~15)
            while int(uint(src)) < end:
                dst[0] = src[0]
                dst[1] = src[1]
                dst[2] = src[2]
                dst[3] = src[3]
                src = ptr32(uint(src) + 16)
                dst = ptr32(uint(dst) + 16)
            end = sp + n
            while int(uint(src)) < end:
                dst[0] = src[0]
                src = ptr32(uint(src) + 4)
                dst = ptr32(uint(dst) + 4)
        else:
            s1 = ptr8(sp)
            d1 = ptr8(dp)
            i = 0
            while i < n:
                d1[i] = s1[i]
                i += 1


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
