"""Number formats: one registry, looked up by name.

A `NumberFormat` describes an encoding well enough for two very different users:
the performance models need `bits_per_element` (storage, *including* every scale
byte a block or group carries), the functional core needs the element layout
(sign/exponent/mantissa split, bias, max normal) and the scaling scheme.

Families
- ``float``   IEEE-like element formats (fp32 … fp4_e2m1), elementwise, no block.
- ``int``     plain two's-complement integers (int8/int4/int2), per-tensor scale.
- ``mx``      OCP MX v1.0: element + E8M0 scale per block of 32 (mxint4/mxint2
              are microxcaling's library-only integer elements).
- ``nvfp4``   fp4_e2m1 elements, E4M3 scale per 16, plus one fp32 scale per tensor.
- ``bfp``     classic block floating point / MSFP: 8-bit shared exponent,
              sign-magnitude mantissas aligned by right shift.
- ``microexp`` shared-microexponent MX4/MX6/MX9 (Rouhani et al., ISCA 2023):
              8-bit exponent per 16, 1-bit microexponent per pair.
- ``int_group`` integer weights with one fp16 scale (and optionally a zero point)
              per group of G elements along the reduction axis: ``int4_g128``,
              ``int4_g128_zp``; ``int4_g128_symz`` is symmetric but stores a zero per
              group anyway (a GPTQ ``sym: true`` or AWQ ``zero_point: false`` checkpoint's
              qzeros), so it has _zp's bytes.
- ``fp8_block`` FP8 elements with one fp32 scale per R x C tile of a weight matrix
              (DeepSeek-V3's checkpoint: ``fp8_e4m3_b128x128``, float32
              ``weight_scale_inv`` per 128 x 128 block): 8 + 32 / (R*C) bits.
              Priced by the cost models; the functional core has no 2-D block
              quantizer and refuses it.

Parametric names are parsed, not enumerated: ``bfp_m5_b32`` (mantissa 5, block 32),
``bfp12_b32`` (12 total bits = 8 exp + sign + 3, block 32), ``mxfp8_e4m3_b16``
(an MX format with a non-default block), ``int3_g64_zp``, ``fp8_e4m3_b128x128``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from functools import lru_cache

__all__ = ["NumberFormat", "FormatError", "get_format", "list_formats", "bits_per_element"]


class FormatError(ValueError):
    """An unknown or malformed number-format name."""


@dataclass(frozen=True)
class NumberFormat:
    name: str
    family: str  # float | int | mx | nvfp4 | bfp | microexp | int_group | fp8_block
    element_bits: int  # bits stored per element code (sign included)
    sign_bits: int
    exponent_bits: int  # private exponent bits of an element (0 for int/bfp)
    mantissa_bits: int  # stored mantissa / magnitude bits
    exponent_bias: int | None = None
    max_normal: float | None = None  # largest finite element value (before block scaling)
    min_normal: float | None = None
    has_inf: bool = False
    has_nan: bool = False
    element: str | None = None  # element format name of a block format ("fp4_e2m1")
    block_size: int | None = None  # elements sharing one scale (None = elementwise)
    scale_format: str | None = None  # e8m0 | e4m3 | fp16 | exp8 | fp32
    scale_bits: int = 0  # bits of the per-block scale
    subblock_size: int | None = None  # microexp: elements sharing a microexponent
    subblock_bits: int = 0  # bits per sub-block (microexponent)
    zero_point_bits: int = 0  # int_group with zero point: bits per group
    tensor_scale_bits: int = 0  # one per tensor (NVFP4's fp32): priced per weight matrix (TensorSpec.tensor_scales)
    block_shape: tuple | None = None  # fp8_block: (rows, cols) of the 2-D tile one scale covers (block_size = product)
    symmetric: bool = True
    description: str = ""

    @property
    def bits_per_element(self) -> float:
        """Storage bits per element, including amortised block/group overhead."""
        bits = float(self.element_bits)
        if self.block_size:
            per_block = self.scale_bits + self.zero_point_bits
            if self.subblock_size:
                per_block += self.subblock_bits * (self.block_size // self.subblock_size)
            bits += per_block / self.block_size
        return bits

    def tile_bits(self, rows: int, cols: int) -> float:
        """Storage bits of a rows x cols matrix in a 2-D block format (fp8_block): the tiles actually stored,
        ceil(rows / R) x ceil(cols / C), each with its whole scale (DeepSeek-V3's kv_a_proj_with_mqa,
        576 x 7168, stores a 5 x 56 weight_scale_inv: 576 = 4.5 x 128 ends in a short tile)."""
        R, C = self.block_shape
        return rows * cols * self.element_bits + -(-rows // R) * -(-cols // C) * self.scale_bits

    def row_bits(self, n: int) -> float:
        """Storage bits of n elements blocked along one axis: the blocks actually stored,
        ceil(n / block), each with its whole scale (a short last block is stored padded,
        as cosim.functional's encode() does): int4_g128 on a row of 576 = 4.5 x 128 is
        576*4 + 5*16 bits, 4.1389 bits/element, not the amortised 4.125."""
        if not self.block_size:
            return n * self.bits_per_element
        per_block = self.scale_bits + self.zero_point_bits
        if self.subblock_size:
            per_block += self.subblock_bits * (self.block_size // self.subblock_size)
        return n * self.element_bits + -(-n // self.block_size) * per_block

    @property
    def bytes_per_element(self) -> float:
        return self.bits_per_element / 8.0

    @property
    def is_block(self) -> bool:
        return self.block_size is not None

    @property
    def is_float(self) -> bool:
        return self.exponent_bits > 0

    def with_block_size(self, block_size: int) -> "NumberFormat":
        if not self.is_block:
            raise FormatError(f"format {self.name!r} has no block; cannot set block_size={block_size}")
        if block_size <= 0 or block_size > MAX_BLOCK_SIZE:
            raise FormatError(f"block_size must be a positive integer of at most {MAX_BLOCK_SIZE:,}, "
                              f"got {block_size!r}")
        return replace(self, block_size=int(block_size), block_shape=None)


def _float(name, e, m, bias, max_normal, *, inf, nan, desc=""):
    min_normal = 2.0 ** (1 - bias)
    return NumberFormat(name=name, family="float", element_bits=1 + e + m, sign_bits=1,
                        exponent_bits=e, mantissa_bits=m, exponent_bias=bias,
                        max_normal=max_normal, min_normal=min_normal, has_inf=inf,
                        has_nan=nan, description=desc)


# Element formats (OCP MX v1.0 Table 1; IEEE 754 for fp32/fp16; bf16 and tf32 vendor docs).
_ELEMENTS = {
    "fp32": _float("fp32", 8, 23, 127, (2 - 2**-23) * 2.0**127, inf=True, nan=True, desc="IEEE binary32"),
    "tf32": _float("tf32", 8, 10, 127, (2 - 2**-10) * 2.0**127, inf=True, nan=True,
                   desc="NVIDIA TensorFloat-32 (19 significant bits, stored as 32)"),
    "bf16": _float("bf16", 8, 7, 127, (2 - 2**-7) * 2.0**127, inf=True, nan=True, desc="bfloat16"),
    "fp16": _float("fp16", 5, 10, 15, 65504.0, inf=True, nan=True, desc="IEEE binary16"),
    "fp8_e4m3": _float("fp8_e4m3", 4, 3, 7, 448.0, inf=False, nan=True, desc="OCP FP8 E4M3 (no Inf)"),
    "fp8_e5m2": _float("fp8_e5m2", 5, 2, 15, 57344.0, inf=True, nan=True, desc="OCP FP8 E5M2 (IEEE-like)"),
    "fp6_e3m2": _float("fp6_e3m2", 3, 2, 3, 28.0, inf=False, nan=False, desc="OCP FP6 E3M2"),
    "fp6_e2m3": _float("fp6_e2m3", 2, 3, 1, 7.5, inf=False, nan=False, desc="OCP FP6 E2M3"),
    "fp4_e2m1": _float("fp4_e2m1", 2, 1, 1, 6.0, inf=False, nan=False, desc="OCP FP4 E2M1"),
}
# tf32 is stored in 32-bit registers; its storage cost is fp32's.
_ELEMENTS["tf32"] = replace(_ELEMENTS["tf32"], element_bits=32)

_INTS = {
    f"int{b}": NumberFormat(name=f"int{b}", family="int", element_bits=b, sign_bits=1,
                            exponent_bits=0, mantissa_bits=b - 1, max_normal=float(2 ** (b - 1) - 1),
                            description=f"{b}-bit two's-complement integer")
    for b in (8, 4, 2)
}

# MX integer elements as the reference treats them: sign + (b-2) fraction bits after one
# integer bit, i.e. value = n * 2^-(b-2), max = (2^(b-1)-1) / 2^(b-2) (mx-formats.md §3).
_MX_INT_ELEMENT_MAX = {8: 127 / 64, 4: 7 / 4, 2: 1.0}

# one canonical name per encoding; the long spelling is accepted as an alias
_ALIASES = {"mxfp4_e2m1": "mxfp4"}


def _mx(elem: str, block: int = 32) -> NumberFormat:
    if elem.startswith("int"):
        bits = int(elem[3:])
        return NumberFormat(name=f"mx{elem}", family="mx", element_bits=bits, sign_bits=1,
                            exponent_bits=0, mantissa_bits=bits - 1,
                            max_normal=_MX_INT_ELEMENT_MAX[bits], element=elem, block_size=block,
                            scale_format="e8m0", scale_bits=8,
                            description=f"OCP MX {elem.upper()} elements, E8M0 scale per {block}")
    e = _ELEMENTS[elem]
    return replace(e, name=f"mx{elem}", family="mx", element=elem, block_size=block,
                   scale_format="e8m0", scale_bits=8,
                   description=f"OCP MX {elem.upper()} elements, E8M0 scale per {block}")


def _bfp(mantissa: int, block: int, name: str) -> NumberFormat:
    return NumberFormat(name=name, family="bfp", element_bits=1 + mantissa, sign_bits=1,
                        exponent_bits=0, mantissa_bits=mantissa,
                        max_normal=(2**mantissa - 1) / 2 ** (mantissa - 1), block_size=block,
                        scale_format="exp8", scale_bits=8,
                        description=f"block floating point: 8-bit shared exponent per {block}, "
                                    f"sign + {mantissa}-bit magnitude")


def _microexp(magnitude: int, name: str) -> NumberFormat:
    # 16-element block, 8-bit shared exponent, 1-bit microexponent per pair (ISCA 2023).
    return NumberFormat(name=name, family="microexp", element_bits=1 + magnitude, sign_bits=1,
                        exponent_bits=0, mantissa_bits=magnitude,
                        max_normal=(2**magnitude - 1) / 2 ** (magnitude - 1), block_size=16,
                        scale_format="exp8", scale_bits=8, subblock_size=2, subblock_bits=1,
                        description=f"shared-microexponent {name.upper()}: 8-bit exponent per 16, "
                                    f"1-bit microexponent per 2, sign + {magnitude}-bit magnitude")


def _int_group(bits: int, group: int, zero_point: bool, stored_zero: bool = False) -> NumberFormat:
    """`stored_zero` (``_symz``): symmetric values, but the checkpoint stores a `bits`-wide zero per
    group anyway: GPTQ's layout keeps an int32-packed ``qzeros`` tensor of (in / group) x
    (out x bits / 32) words whether ``sym`` is true or not (vLLM
    vllm/model_executor/layers/quantization/gptq.py, GPTQLinearMethod.create_weights)."""
    name = f"int{bits}_g{group}" + ("_zp" if zero_point else "_symz" if stored_zero else "")
    desc = (f" and {bits}-bit zero point" if zero_point else
            f" (symmetric; a {bits}-bit zero per group stored, GPTQ/AWQ qzeros)" if stored_zero else " (symmetric)")
    return NumberFormat(name=name, family="int_group", element_bits=bits, sign_bits=0 if zero_point else 1,
                        exponent_bits=0, mantissa_bits=bits if zero_point else bits - 1,
                        max_normal=float(2**bits - 1 if zero_point else 2 ** (bits - 1) - 1),
                        block_size=group, scale_format="fp16", scale_bits=16,
                        zero_point_bits=bits if zero_point or stored_zero else 0, symmetric=not zero_point,
                        description=f"{bits}-bit integer groups of {group} with fp16 scale" + desc)


def _fp8_block(elem: str, rows: int, cols: int) -> NumberFormat:
    # one fp32 scale per rows x cols tile (DeepSeek-V3 stores float32 weight_scale_inv per
    # 128 x 128 block: https://huggingface.co/deepseek-ai/DeepSeek-V3, README_WEIGHTS.md)
    e = _ELEMENTS[f"fp8_{elem}"]
    return replace(e, name=f"fp8_{elem}_b{rows}x{cols}", family="fp8_block", element=e.name,
                   block_size=rows * cols, block_shape=(rows, cols), scale_format="fp32", scale_bits=32,
                   description=f"FP8 {elem.upper()} elements, fp32 scale per {rows} x {cols} block")


def _static_registry() -> dict[str, NumberFormat]:
    reg: dict[str, NumberFormat] = dict(_ELEMENTS)
    reg.update(_INTS)
    for elem in ("fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "int8", "int4", "int2"):
        f = _mx(elem)
        reg[f.name] = f
    reg["mxfp4"] = replace(reg.pop("mxfp4_e2m1"), name="mxfp4")
    reg["nvfp4"] = replace(_ELEMENTS["fp4_e2m1"], name="nvfp4", family="nvfp4", element="fp4_e2m1",
                           block_size=16, scale_format="e4m3", scale_bits=8, tensor_scale_bits=32,
                           description="NVIDIA NVFP4: FP4 E2M1, E4M3 scale per 16, fp32 per tensor")
    # MSFP (Rouhani et al., NeurIPS 2020): named after 8 exp + 1 sign + m mantissa bits, box of 16.
    reg["msfp12"] = _bfp(3, 16, "msfp12")
    reg["msfp16"] = _bfp(7, 16, "msfp16")
    reg["bfp16"] = _bfp(7, 16, "bfp16")
    reg["bfp12"] = _bfp(3, 16, "bfp12")
    for mag, name in ((2, "mx4"), (4, "mx6"), (7, "mx9")):
        reg[name] = _microexp(mag, name)
    for bits in (8, 4, 3, 2):
        for group in (32, 64, 128):
            for zp in (False, True):
                f = _int_group(bits, group, zp)
                reg[f.name] = f
    return reg


_REGISTRY = _static_registry()
# Blocks share one scale; published block formats use 16-128 elements. Far larger values
# are typos, and per-block work buffers grow with them (block_size=10**12 exhausted memory).
MAX_BLOCK_SIZE = 1 << 20

_PARAMETRIC = [
    (re.compile(r"^bfp_m(\d+)_b(\d+)$"), lambda m, b: _bfp(int(m), int(b), f"bfp_m{m}_b{b}")),
    (re.compile(r"^(?:bfp|msfp)(\d+)_b(\d+)$"), lambda t, b: _bfp(int(t) - 9, int(b), f"bfp{t}_b{b}")),
    (re.compile(r"^int(\d+)_g(\d+)(_zp|_symz)?$"),
     lambda b, g, z: _int_group(int(b), int(g), z == "_zp", z == "_symz")),
    (re.compile(r"^fp8_(e4m3|e5m2)_b(\d+)x(\d+)$"), lambda e, r, c: _fp8_block(e, int(r), int(c))),
    (re.compile(r"^(mx[a-z0-9_]+?)_b(\d+)$"), lambda base, b: replace(
        get_format(base).with_block_size(int(b)), name=f"{base}_b{b}")),
]


@lru_cache(maxsize=4096)  # bounded: parametric names (int4_g<any>) are unbounded in number
def get_format(name: str) -> NumberFormat:
    """Look up a format by name; parametric names are parsed. Unknown names raise
    `FormatError` listing the closest registered names."""
    if isinstance(name, NumberFormat):
        return name
    if not isinstance(name, str) or not name:
        raise FormatError(f"number format must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    for pattern, build in _PARAMETRIC:
        m = pattern.match(key)
        if m:
            try:
                f = build(*m.groups())
            except (KeyError, FormatError):
                break
            _check_parametric(f, name)
            return f
    close = difflib.get_close_matches(key, list(_REGISTRY), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `cosim list formats`"
    raise FormatError(f"unknown number format {name!r}{hint}")


def _check_parametric(f: NumberFormat, name: str) -> None:
    if f.family == "bfp" and not 1 <= f.mantissa_bits <= 23:
        raise FormatError(f"format {name!r}: BFP mantissa bits must be 1..23, got {f.mantissa_bits}")
    if f.family == "int_group" and not 2 <= f.element_bits <= 8:
        raise FormatError(f"format {name!r}: integer group bits must be 2..8, got {f.element_bits}")
    if f.block_size is not None and not 0 < f.block_size <= MAX_BLOCK_SIZE:
        raise FormatError(f"format {name!r}: block size must be in 1..{MAX_BLOCK_SIZE:,}, got {f.block_size}")


def list_formats() -> list[NumberFormat]:
    """Every registered (non-parametric) format, sorted by family then bits."""
    fams = ["float", "int", "mx", "nvfp4", "bfp", "microexp", "int_group"]
    return sorted(_REGISTRY.values(), key=lambda f: (fams.index(f.family), -f.bits_per_element, f.name))


def bits_per_element(name: str) -> float:
    return get_format(name).bits_per_element
