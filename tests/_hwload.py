"""Load a bundled hardware YAML for the cycle-model tests (the project loader when present)."""

from pathlib import Path

from hwmodels.spec import HardwareSpec, MemoryLevel

HW_DIR = Path(__file__).resolve().parents[1] / "configs" / "hw"


def load(name: str) -> HardwareSpec:
    try:
        from hwmodels.spec import load_hw
    except ImportError:
        return _minimal(HW_DIR / f"{name}.yaml")
    return load_hw(name)


def _minimal(path: Path) -> HardwareSpec:  # until hwmodels.spec.load_hw is merged
    from hwmodels.accel import quantity
    from workloads.io import load_yaml_file

    d = load_yaml_file(path)
    src = str(path)
    q = lambda v, k, f: quantity(v, k, src, f)  # noqa: E731
    mem = []
    for i, m in enumerate(d["memory"]):
        e = m.get("energy")
        epb = None
        if e:
            num, unit = e.split()
            epb = float(num) * 1e-12 * (8 if unit == "pJ/bit" else 1)
        mem.append(MemoryLevel(m["name"], q(m["capacity"], "bytes", f"memory[{i}].capacity"),
                               q(m["bandwidth"], "bandwidth", f"memory[{i}].bandwidth"), epb))
    peaks = {}
    for f, v in d["compute"].items():
        num, unit = v.split()
        peaks[f] = float(num) * 1e12
    static = d.get("energy", {}).get("static_power")
    return HardwareSpec(name=d["name"], kind=d["kind"], clock_hz=q(d["clock"], "frequency", "clock"),
                        peak_flops=peaks, memory=tuple(mem),
                        static_power_w=float(static.split()[0]) if static else None,
                        sections={k: d[k] for k in ("accelerator", "fpga") if k in d}, source=src)
