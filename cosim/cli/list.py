"""`cosim list hw|systems|models|formats|recipes|sweeps|experiments`: what is bundled, one line each."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("list", help="list bundled hardware, systems, models, number formats, recipes, sweeps or "
                                    "experiments")
    p.add_argument("what", choices=("hw", "systems", "models", "formats", "recipes", "sweeps", "experiments"),
                   help="which bundled things to list (recipes: with a one-line description and the paper)")
    p.set_defaults(func=run)


def _bundled(kind: str, name: str):
    """The bundled file of `name`, loaded by its path: the listing names every bundled file, not the user,
    so a same-named local file in the working directory is no shadow note here (workloads.io)."""
    from workloads.io import bundled_dir
    return bundled_dir(kind) / f"{name}.yaml"


def run(args) -> int:
    if args.what == "formats":
        from workloads.formats import list_formats
        print(f"{'name':<16}{'family':<11}{'bits/elem':>10}  {'block':>5}  description")
        for f in list_formats():
            print(f"{f.name:<16}{f.family:<11}{f.bits_per_element:>10.4g}  {f.block_size or '-':>5}  {f.description}")
        print("parametric: bfp_m<M>_b<B>, bfp<T>_b<B>, int<N>_g<G>[_zp|_symz], <mx format>_b<B>, "
              "fp8_<e4m3|e5m2>_b<R>x<C> (fp32 scale per R x C block; cost models only)")
    elif args.what == "models":
        from workloads.models import list_models, load_model
        for name in list_models():
            m = load_model(_bundled("models", name))
            kind = "MLA+MoE" if m.mla and m.moe else "MoE" if m.moe else ("GQA" if m.kv_heads < m.heads else "MHA")
            print(f"{name:<22}{kind:<9}{m.params / 1e9:7.2f} B params  {m.layers:3d} layers  {m.source}")
    elif args.what == "hw":
        from hwmodels.spec import list_hw, load_hw
        specs = {name: load_hw(_bundled("hw", name)) for name in list_hw()}
        levels = {name: _levels(h) for name, h in specs.items()}
        w = max(map(len, levels.values()), default=0) + 2
        for name, h in specs.items():
            print(f"{name:<22}{h.kind:<12}{levels[name]:<{w}}{h.description}")
    elif args.what == "recipes":
        _recipes()
    elif args.what == "systems":
        from hwmodels.system import list_systems, load_system
        for name in list_systems():
            s = load_system(_bundled("systems", name))
            print(f"{name:<22}{s.devices:>4} x {s.device.name:<18}{s.description}")
    else:
        _described(args.what)
    return 0


def _levels(h) -> str:
    """The levels whose own model prices this hardware, and what the analytical one rests on: a calibration
    measured on it, or a sibling's transferred (hwmodels.gpu_transfer), across architectures or not. Another level
    prices at the roofline with every row saying so, and a sweep refuses it unless it allows the fallback."""
    from hwmodels.levels import level_support
    out = ["roofline"]
    a = level_support(h, "analytical")
    if a.ok:
        transfer = (h.sections.get("analytical") or {}).get("transfer")  # hwmodels.spec: calibration: {from: ...}
        how = f"from {transfer['from']}" if transfer else "calibrated"
        out.append(f"analytical ({how}{', cross-arch' if 'CROSS-ARCHITECTURE' in a.provenance else ''})")
    if level_support(h, "cycle").ok:
        out.append("cycle")
    return ", ".join(out)


def _first_comment(path) -> str:
    """A bundled sweep/experiment's first sentence of its leading comment: what it asks (the
    first line alone stopped mid-sentence)."""
    import re
    block = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        block.append(line.lstrip("# ").strip())
    text = " ".join(block).split("cosim sweep ")[0].strip()  # not the run command the comment ends with
    m = re.search(r"[.?](?=\s|$)", text)
    return text[:m.end()] if m else text


def _described(kind: str) -> None:
    from workloads.io import bundled_dir, bundled_names
    names = bundled_names(kind)
    w = max(map(len, names), default=0) + 2  # a long name never runs into its description
    for name in names:
        print(f"{name:<{w}}{_first_comment(bundled_dir(kind) / f'{name}.yaml')}")


def _recipes() -> None:
    """name, method, what it does (the file's description) and the paper (first part of
    its citation: authors, title, venue)."""
    from workloads.io import bundled_dir, bundled_names, load_yaml_file
    docs = {n: load_yaml_file(bundled_dir("recipes") / f"{n}.yaml", "recipe") for n in bundled_names("recipes")}
    wn = max(map(len, docs), default=0) + 2  # columns as wide as their longest entry
    wm = max((len(str(d.get("method", ""))) for d in docs.values()), default=0) + 2
    for name, doc in docs.items():
        paper = str(doc.get("citation", "")).split(";")[0].split(" (")[0].strip()
        what = str(doc.get("description", "")).split(". ")[0].rstrip(".")
        print(f"{name:<{wn}}{doc.get('method', ''):<{wm}}{what}"
              + (f"  [{paper}]" if paper else ""))
