"""Systolic-array core: how a GEMM or a convolution maps onto an R x C PE array.

Closed forms for output-, weight- and input-stationary dataflows (see
shared/docs/systolic-model.md, which derives them from the SCALE-Sim 3.0.0 code and
checks them against 1,851 reference runs):

====  ===================  ===================  ========  =========================
flow  array rows <-        array cols <-        time <-   cycles per fold
====  ===================  ===================  ========  =========================
os    M (output pixels)    N (filters)          K         T + R + C - 2
ws    K (window)           N (filters)          M         2R + C + T - 2 (R preload)
is    K (window)           M (output pixels)    N         2R + C + T - 2 (R preload)
====  ===================  ===================  ========  =========================

Folds run one after another, column folds outer and row folds inner; edge folds leave
PEs idle. Two counting conventions are offered:

* default (``compat=None``) counts what the hardware does: a schedule of L cycles takes
  L cycles, every output is written once in ``os``, compute utilisation divides by the
  fold length the timeline really takes, and a K-fold's partial sums that go back to
  the ofmap SRAM are also *read* back for accumulation (``ofmap_sram_reads``).
  Convolution output size uses the framework (floor) rule.
* ``compat="scalesim"`` reproduces SCALE-Sim 3.0.0's report numbers exactly: last
  cycle index instead of cycle count (``-1``), ``os`` ofmap writes ``M*N + folds*(R+C)``
  (issue #166 double increment), ws/is compute utilisation over a fold ``C - 1`` cycles
  longer than the timeline, no partial-sum reads, ceil rule for the output size.

Everything here is integer arithmetic and numpy broadcasting, so whole traces are
evaluated at once (`gemm_cycles_array`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from workloads.io import InputError

__all__ = ["DATAFLOWS", "COMPAT_MODES", "SystolicError", "GemmCycles", "DramTraffic", "gemm_cycles", "conv_cycles",
           "gemm_cycles_array", "conv_output_size", "conv_to_gemm", "fold_geometry",
           "dram_traffic"]

DATAFLOWS = ("os", "ws", "is")
COMPAT_MODES = (None, "scalesim")


class SystolicError(InputError):
    """A mapping question the array cannot answer (bad dataflow, empty array …)."""


@dataclass
class GemmCycles:
    """Cycles and SRAM access counts of one GEMM (or im2col-lowered convolution) on an
    R x C array. Words are operand elements (SCALE-Sim: bytes); utilisations in percent.
    From `gemm_cycles_array` every count is a numpy array over the GEMMs."""
    m: int
    n: int
    k: int
    rows: int
    cols: int
    dataflow: str
    compat: str | None
    overlap: bool
    folds: int
    row_folds: int
    col_folds: int
    cycles_per_fold: int
    compute_cycles: int  # stall-free (SCALE-Sim's Total - Stall in compat="scalesim")
    stall_cycles: int
    total_cycles: int  # compute + stall
    macs: int
    mapping_efficiency: float
    compute_utilization: float
    overall_utilization: float
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    ofmap_sram_reads: int  # partial-sum read-back; 0 in scalesim mode
    ofmap_h: int | None = None  # convolutions only
    ofmap_w: int | None = None

    @classmethod
    def _of(cls, values: dict) -> "GemmCycles":
        """From a dict holding every field but the conv-only ones. The closed forms run in
        a few microseconds and sweeps call them per layer: filling the instance's dict
        directly keeps the result object from doubling that (the generated __init__ with
        25 keyword arguments costs ~2 us; the dict is taken over, not copied)."""
        obj = cls.__new__(cls)
        obj.__dict__ = values  # ofmap_h / ofmap_w: the class defaults (None) unless given
        return obj

    def to_dict(self) -> dict:
        """Every field (ofmap_h / ofmap_w only for a convolution)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name in ("ofmap_h", "ofmap_w") and getattr(self, f.name) is None)}


def _check(dataflow: str, rows: int, cols: int, compat, source: str = "systolic") -> str:
    df = str(dataflow).lower()
    if df not in DATAFLOWS:
        raise SystolicError(f"{source}: dataflow: got {dataflow!r}; expected one of {DATAFLOWS} "
                            f"(output / weight / input stationary)")
    for name, v in (("rows", rows), ("cols", cols)):
        if int(v) != v or v < 1:
            raise SystolicError(f"{source}: array {name}: got {v!r}; expected a positive integer")
    if compat not in COMPAT_MODES:
        raise SystolicError(f"{source}: compat: got {compat!r}; expected None (hardware counts) "
                            f"or 'scalesim'")
    return df


def _ceil(a, b):
    return -(-a // b)


def fold_geometry(m, n, k, rows, cols, dataflow):
    """(Sr, Sc, T): the GEMM dimensions on array rows, array columns and time."""
    if dataflow == "os":
        return m, n, k
    if dataflow == "ws":
        return k, n, m
    return k, m, n  # is


def _core(m, n, k, rows, cols, df, compat, overlap=False):
    """Shared closed forms; works on Python ints or numpy int64 arrays alike."""
    sr, sc, t = fold_geometry(m, n, k, rows, cols, df)
    row_folds = _ceil(sr, rows)
    col_folds = _ceil(sc, cols)
    folds = row_folds * col_folds
    if df == "os":
        per_fold = t + rows + cols - 2
        util_fold = per_fold
    else:
        per_fold = 2 * rows + cols + t - 2
        # SCALE-Sim's compute-util denominator is C - 1 cycles longer than the timeline.
        util_fold = per_fold + cols - 1 if compat == "scalesim" else per_fold
    cycles = folds * per_fold - (1 if compat == "scalesim" else 0)
    if overlap:
        # Folds pipelined back to back: the next stationary tile is preloaded (R cycles,
        # one row per cycle) while the current one computes, and os drains its R x C
        # results (one row per cycle) under the next fold, so a fold issues every
        # max(T, R) cycles; the first preload and one fill/drain skew stay exposed.
        # One fold takes exactly as long as without overlap.
        preload = 0 if df == "os" else rows
        step = np.maximum(t, rows) if isinstance(t, np.ndarray) else max(t, rows)
        cycles = preload + (folds - 1) * step + t + rows + cols - 2
        util_fold = cycles / folds
    macs = m * n * k
    # Mean over folds of used PEs / (R*C) = Sr*Sc / (folds*R*C): the used PEs of all
    # folds sum to the whole Sr x Sc plane.
    mapping = 100.0 * (sr * sc) / (folds * rows * cols)
    compute_util = mapping * t / util_fold
    # SRAM traffic (words the array requests / produces)
    if df == "os":
        ifmap_r = _ceil(n, cols) * m * k
        filt_r = _ceil(m, rows) * k * n
        ofmap_w = m * n + (folds * (rows + cols) if compat == "scalesim" else 0)
        ofmap_r = 0 * m
    elif df == "ws":
        ifmap_r = _ceil(n, cols) * m * k
        filt_r = k * n
        ofmap_w = row_folds * m * n
        ofmap_r = 0 * m if compat == "scalesim" else (row_folds - 1) * m * n
    else:
        ifmap_r = m * k
        filt_r = _ceil(m, cols) * k * n
        ofmap_w = row_folds * m * n
        ofmap_r = 0 * m if compat == "scalesim" else (row_folds - 1) * m * n
    return dict(folds=folds, row_folds=row_folds, col_folds=col_folds, cycles_per_fold=per_fold,
                compute_cycles=cycles, macs=macs, mapping_efficiency=mapping,
                compute_utilization=compute_util, ifmap_sram_reads=ifmap_r,
                filter_sram_reads=filt_r, ofmap_sram_writes=ofmap_w, ofmap_sram_reads=ofmap_r)


# Above this many folds the per-fold float means are replaced by the closed form
# (identical up to ~1e-14 relative; only the summation order differs).
_MAX_EXACT_FOLDS = 4_000_000


def _scalesim_means(m, n, k, rows, cols, df):
    """SCALE-Sim's mapping efficiency and compute utilisation bit for bit: it appends one
    fraction per fold (column folds outer, row folds inner) and divides a sequential
    Python sum by the fold count. np.cumsum sums sequentially, so its last element
    equals that Python sum exactly."""
    sr, sc, t = fold_geometry(m, n, k, rows, cols, df)
    rf, cf = _ceil(sr, rows), _ceil(sc, cols)
    fold_len = t + rows + cols - 2 if df == "os" else 2 * rows + 2 * cols + t - 3
    pes = rows * cols
    if rf * cf <= 256:  # few folds: a plain Python loop is the same sequential sum, faster
        mapping = util = 0.0
        for j in range(cf):
            uc = min(cols, sc - j * cols)
            for i in range(rf):
                used = float(min(rows, sr - i * rows) * uc)
                mapping += used / pes
                util += used * t / (pes * fold_len)
        return mapping / (rf * cf) * 100, util / (rf * cf) * 100
    used_r = np.minimum(rows, sr - np.arange(rf) * rows)
    used_c = np.minimum(cols, sc - np.arange(cf) * cols)
    used = (used_c[:, None] * used_r[None, :]).ravel().astype(np.float64)
    mapping = np.cumsum(used / (rows * cols))[-1] / used.size * 100
    util = np.cumsum(used * t / (rows * cols * fold_len))[-1] / used.size * 100
    return float(mapping), float(util)


def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: str = "os",
                compat: str | None = None, stall_cycles: int = 0, overlap: bool = False) -> GemmCycles:
    """Cycles and access counts of C[m x n] = A[m x k] B[k x n] on a rows x cols array.

    Returns a `GemmCycles` with ``compute_cycles`` (stall-free; SCALE-Sim's Total - Stall in
    ``compat="scalesim"``), ``total_cycles`` (= compute + ``stall_cycles``),
    ``folds``, ``cycles_per_fold``, ``mapping_efficiency`` / ``compute_utilization`` /
    ``overall_utilization`` (percent), ``ifmap_sram_reads``, ``filter_sram_reads``,
    ``ofmap_sram_writes``, ``ofmap_sram_reads`` (partial-sum read-back; 0 in scalesim
    mode) and ``macs``. Words are operand elements (SCALE-Sim: bytes).

    ``overlap=True`` models an array with double-buffered stationary registers: folds
    run back to back (per fold max(T, R) cycles), the first preload and one fill/drain
    skew are exposed. SCALE-Sim has no such mode, so it cannot be combined with compat.
    """
    df = _check(dataflow, rows, cols, compat)
    if overlap and compat == "scalesim":
        raise SystolicError("gemm_cycles: overlap: got True with compat='scalesim'; expected overlap=False "
                            "(SCALE-Sim never overlaps folds)")
    for name, v in (("m", m), ("n", n), ("k", k)):
        if int(v) != v or v < 1:
            raise SystolicError(f"gemm_cycles: {name}: got {v!r}; expected a positive integer")
    out = _core(int(m), int(n), int(k), int(rows), int(cols), df, compat, overlap)
    if compat == "scalesim" and out["folds"] <= _MAX_EXACT_FOLDS:
        out["mapping_efficiency"], out["compute_utilization"] = _scalesim_means(
            int(m), int(n), int(k), int(rows), int(cols), df)
    total = out["compute_cycles"] + int(stall_cycles)
    out["stall_cycles"] = int(stall_cycles)
    out["total_cycles"] = total
    out["overall_utilization"] = 100.0 * out["macs"] / (total * rows * cols) if total > 0 else 0.0
    out.update(m=int(m), n=int(n), k=int(k), rows=int(rows), cols=int(cols), dataflow=df,
               compat=compat, overlap=bool(overlap))
    return GemmCycles._of(out)


def gemm_cycles_array(m, n, k, rows: int, cols: int, dataflow: str = "os",
                      compat: str | None = None, overlap: bool = False) -> GemmCycles:
    """Vectorised `gemm_cycles` over numpy arrays of m, n, k (broadcast). Used by the
    cycle-level model to cost a whole trace in one call."""
    df = _check(dataflow, rows, cols, compat)
    m, n, k = (np.asarray(x, dtype=np.int64) for x in (m, n, k))
    if np.any(m < 1) or np.any(n < 1) or np.any(k < 1):
        raise SystolicError("gemm_cycles_array: m, n, k must all be >= 1")
    out = _core(m, n, k, int(rows), int(cols), df, compat, overlap)
    return GemmCycles(**out, stall_cycles=0 * m, total_cycles=out["compute_cycles"],
                      overall_utilization=100.0 * out["macs"] / (out["compute_cycles"] * rows * cols),
                      m=m, n=n, k=k, rows=int(rows), cols=int(cols), dataflow=df, compat=compat,
                      overlap=bool(overlap))


def conv_output_size(in_size: int, filt: int, stride: int, compat: str | None = None) -> int:
    """Output pixels along one axis with no padding. SCALE-Sim uses a ceiling, which adds a
    partial window hanging off the edge when the stride does not divide ``in - f``;
    frameworks (and the hardware we model by default) use the floor."""
    if filt > in_size:
        raise SystolicError(f"conv: filter {filt} larger than input {in_size} (no padding is modelled; "
                            f"enlarge the input by the padding yourself)")
    if compat == "scalesim":
        return _ceil(in_size - filt + stride, stride)
    return (in_size - filt) // stride + 1


def conv_to_gemm(ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters,
                 stride_h=1, stride_w=1, compat=None) -> tuple[int, int, int, int, int]:
    """im2col lowering: (M, N, K, ofmap_h, ofmap_w) with M = ofmap_h*ofmap_w output pixels,
    N = num_filters, K = filter_h*filter_w*channels."""
    for name, v in (("ifmap_h", ifmap_h), ("ifmap_w", ifmap_w), ("filter_h", filter_h),
                    ("filter_w", filter_w), ("channels", channels), ("num_filters", num_filters),
                    ("stride_h", stride_h), ("stride_w", stride_w)):
        if int(v) != v or v < 1:
            raise SystolicError(f"conv_cycles: {name}: got {v!r}; expected a positive integer")
    oh = conv_output_size(int(ifmap_h), int(filter_h), int(stride_h), compat)
    ow = conv_output_size(int(ifmap_w), int(filter_w), int(stride_w), compat)
    return oh * ow, int(num_filters), int(filter_h) * int(filter_w) * int(channels), oh, ow


def conv_cycles(ifmap_h: int, ifmap_w: int, filter_h: int, filter_w: int, channels: int,
                num_filters: int, stride_h: int = 1, stride_w: int | None = None, *,
                rows: int, cols: int, dataflow: str = "os", compat: str | None = None,
                stall_cycles: int = 0, overlap: bool = False) -> GemmCycles:
    """A convolution layer given as SCALE-Sim's topology row (no padding), lowered to a
    GEMM by im2col and costed with `gemm_cycles`. Adds ``ofmap_h``/``ofmap_w``."""
    stride_w = stride_h if stride_w is None else stride_w
    m, n, k, oh, ow = conv_to_gemm(ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters,
                                   stride_h, stride_w, compat)
    out = gemm_cycles(m, n, k, rows, cols, dataflow, compat, stall_cycles, overlap)
    out.ofmap_h, out.ofmap_w = oh, ow
    return out


def _col_classes(sc: int, cols: int):
    """(used columns, number of column folds) for the full folds and the edge fold."""
    full, edge = divmod(sc, cols)
    out = [(cols, full)] if full else []
    if edge:
        out.append((edge, 1))
    return out


@dataclass(frozen=True)
class DramTraffic:
    """Words moved between DRAM and the scratchpads for one GEMM (see `dram_traffic`)."""
    ifmap_dram_reads: float
    filter_dram_reads: float
    ofmap_dram_writes: float  # results, and partial sums that spill
    ofmap_dram_reads: float  # spilled partial sums read back
    total: float

    def to_dict(self) -> dict:
        return asdict(self)


def dram_traffic(m: int, n: int, k: int, rows: int, cols: int, dataflow: str,
                 ifmap_words: float, filter_words: float, ofmap_words: float,
                 double_buffered: bool = True) -> DramTraffic:
    """Words moved between DRAM and the three scratchpads for the fold order above
    (column folds outer, row folds inner), reusing an operand on chip when the part the
    inner loop revisits fits in the usable buffer (half of it when double buffered).

    os : the filter column block (K x C) is reused across the inner row folds; the whole
         ifmap (M x K) is streamed once per column fold unless it fits.
    ws : each K x N weight tile is read once; the ifmap K-slices are streamed once per
         column fold unless the whole ifmap fits; partial sums of a column block
         (M x C) stay on chip across K-folds if they fit, else they spill and are read back.
    is : mirror image of ws with ifmap and filter swapped.
    """
    df = _check(dataflow, rows, cols, None)
    share = 0.5 if double_buffered else 1.0
    cap_i, cap_f, cap_o = ifmap_words * share, filter_words * share, ofmap_words * share
    a, b, c = m * k, k * n, m * n
    if df == "os":
        col_folds, row_folds = _ceil(n, cols), _ceil(m, rows)
        ifmap = a if a <= cap_i else a * col_folds
        # the K x (used cols) filter block is reused by the inner row folds if it fits
        filt = sum(k * uc * cnt * (1 if k * uc <= cap_f else row_folds) for uc, cnt in _col_classes(n, cols))
        ofmap_w, ofmap_r = c, 0
    else:
        # ws: stream = ifmap (M x K), stationary = filter, partial sums M x (used cols of N)
        # is: stream = filter (K x N), stationary = ifmap, partial sums N x (used cols of M)
        t_len, sc = (m, n) if df == "ws" else (n, m)
        whole = a if df == "ws" else b
        cap_s = cap_i if df == "ws" else cap_f
        col_folds, row_folds = _ceil(sc, cols), _ceil(k, rows)
        stream = whole if whole <= cap_s else whole * col_folds
        stat = b if df == "ws" else a
        ifmap, filt = (stream, stat) if df == "ws" else (stat, stream)
        ofmap_w = ofmap_r = 0
        for uc, cnt in _col_classes(sc, cols):
            block = t_len * uc
            spill = row_folds > 1 and block > cap_o
            ofmap_w += cnt * block * (row_folds if spill else 1)
            ofmap_r += cnt * block * (row_folds - 1) if spill else 0
    return DramTraffic(ifmap_dram_reads=ifmap, filter_dram_reads=filt, ofmap_dram_writes=ofmap_w,
                       ofmap_dram_reads=ofmap_r, total=ifmap + filt + ofmap_w + ofmap_r)
