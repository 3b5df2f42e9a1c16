"""What kernels cuBLAS runs for the H100's fp8 GEMM fit shapes (train part only) - a diagnostic, issue 11, session 29,
written before the profile exists: does fp8 run nvjet kernels with bf16's tile menu (s36's candidate applied bf16's
menu to bf16 only, and fp8 lost what bf16 gained through the shared fit)?

Reads validation/diagnostics/h100_fp8_kernel_profile.csv (kernel_profile.py profile on
h100_fp8_kernel_profile_cases.csv) and h100_kernel_profile.csv (bf16). Prints: the main kernel's name families (the
longest kernel of call 0), how many are nvjet with a parsable tile, the token and weight tiles seen (fp8 and bf16),
split-K and stream-K counts, and for shapes profiled in both formats how often fp8's tile equals bf16's.

  PYTHONPATH=. python validation/diagnostics/fp8_kernel_names.py [<out.txt>]
"""
import re
import sys
from collections import Counter
from pathlib import Path

from validation.diagnostics.gemm_choice_probe import profiled_kernels

FP8 = Path("validation/diagnostics/h100_fp8_kernel_profile.csv")
BF16 = Path("validation/diagnostics/h100_kernel_profile.csv")
# <weight rows>x<tokens>_<K>x<stages>_<cluster>_<raster>, wherever it sits in an nvjet name
TILE = re.compile(r"_(\d+)x(\d+)_\d+x\d+_(\d)x(\d)_([vh])_")


def stem(name: str) -> str:
    """The name up to its first digit run: the kernel family's prefix."""
    return re.split(r"_\d", name, maxsplit=1)[0][:60]


def tiles(kern: dict) -> tuple:
    tok, wgt = Counter(), Counter()
    for name in kern.values():
        g = TILE.search(name)
        if g and name.startswith("nvjet"):
            wgt[int(g.group(1))] += 1
            tok[int(g.group(2))] += 1
    return tok, wgt


def main(argv):
    fp8, bf16 = profiled_kernels(FP8, "gemm_fp8"), profiled_kernels(BF16, "gemm_bf16")
    lines = [f"# {Path(__file__).name}: {len(fp8)} fp8 shapes profiled (train part), {len(bf16)} bf16 shapes"]
    lines += ["fp8 main kernel families (prefix | shapes):"]
    lines += [f"  {s:<60} | {c}" for s, c in Counter(stem(n) for n in fp8.values()).most_common()]
    nv = [n for n in fp8.values() if n.startswith("nvjet") and TILE.search(n)]
    lines.append(f"nvjet with a parsable tile: {len(nv)} of {len(fp8)}; split-K in the name: "
                 f"{sum('splitK' in n for n in fp8.values())}; stream-K in the name: "
                 f"{sum('streamk' in n.lower() or '_sk_' in n.lower() for n in fp8.values())}")
    for label, kern in (("fp8", fp8), ("bf16", bf16)):
        tok, wgt = tiles(kern)
        lines.append(f"{label} token tiles: " + ", ".join(f"{t}:{c}" for t, c in sorted(tok.items())))
        lines.append(f"{label} weight tiles: " + ", ".join(f"{w}:{c}" for w, c in sorted(wgt.items())))
    both = [s for s in fp8 if s in bf16 and TILE.search(fp8[s]) and TILE.search(bf16[s])]
    same = sum(TILE.search(fp8[s]).groups()[:2] == TILE.search(bf16[s]).groups()[:2] for s in both)
    fam = sum(TILE.search(fp8[s]).groups()[2:] == TILE.search(bf16[s]).groups()[2:] for s in both)
    lines.append(f"shapes profiled in both formats: {len(both)}; same tile {same}, same cluster and raster {fam}")
    text = "\n".join(lines) + "\n"
    print(text)
    if len(argv) > 1:
        Path(argv[1]).write_text(text)


if __name__ == "__main__":
    main(sys.argv)
