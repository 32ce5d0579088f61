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
    """dst[d:d+n] = src[s:s+n] for each (s, d, n) run of the table; a run whose addresses
    and length are multiples of 4 moves 16 bytes per step (the ESP32-S3 faults on
    unaligned 32-bit access, so only aligned runs do)."""
    d_addr = int(uint(ptr8(dst)))
    s_addr = int(uint(ptr8(src)))
    t = ptr32(table)
    r = 0
    while r < n_runs:
        sp = s_addr + t[3 * r]
        dp = d_addr + t[3 * r + 1]
        n = t[3 * r + 2]
        if ((sp | dp | n) & 3) == 0:
            s4 = ptr32(sp)
            d4 = ptr32(dp)
            while n >= 16:
                d4[0] = s4[0]
                d4[1] = s4[1]
                d4[2] = s4[2]
                d4[3] = s4[3]
                s4 = ptr32(uint(s4) + 16)
                d4 = ptr32(uint(d4) + 16)
                n -= 16
            while n > 0:
                d4[0] = s4[0]
                s4 = ptr32(uint(s4) + 4)
                d4 = ptr32(uint(d4) + 4)
                n -= 4
        else:
            s1 = ptr8(sp)
            d1 = ptr8(dp)
            i = 0
            while i < n:
                d1[i] = s1[i]
                i += 1
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
