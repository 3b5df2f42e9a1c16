"""Hardware specs: loading a device's YAML (units written as text, every number cited) into
`HardwareSpec`, the plain data of hwmodels.spec_data (re-exported here with its errors).
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

# the plain data and its errors, re-exported: callers import them from here
from hwmodels.spec_data import FALLBACK_OPTION, HardwareError, HardwareSpec, MemoryLevel, UnsupportedFormatError
from hwmodels.units import BASE_UNIT, format_quantity, parse_quantity
from workloads.formats import FormatError, get_format, list_formats
from workloads.io import (InputError, bundled_dir, bundled_names, copy_tree, field_error, load_yaml_file,
                          looks_like_path, resolve_bundled, warn_shadowed)
from workloads.yamlsafe import short_repr

__all__ = ["HardwareSpec", "MemoryLevel", "HardwareError", "UnsupportedFormatError", "FALLBACK_OPTION",
           "load_hw", "list_hw", "hw_path"]


# ============================================================================ loading from YAML
#
# A hardware file is read in four steps, each able to fail with a message naming the file,
# the field, the bad value and what was expected:
#   1. resolve a bare name to the bundled cosim/configs/hw/<name>.yaml, or take a path as given;
#   2. read it with the safe YAML loader (cached on path + mtime: sweeps load the same file
#      thousands of times) and merge the `calibration:` file into the `analytical` section;
#   3. apply dotted-path overrides ("memory.hbm.bandwidth": "4 TB/s") to the plain document;
#   4. validate the whole document against the schema below, then build the dataclasses.
# Validating the plain document before building anything means every problem is reported
# at once, in the file's own vocabulary, rather than as a traceback from a constructor.

HW_KINDS = ("gpu", "tpu", "fpga", "accelerator")
_RAW_SECTIONS = ("accelerator", "fpga", "analytical")  # owned by the models that read them
_TOP_KEYS = ("name", "kind", "description", "clock", "compute", "memory", "energy", "power",
             "interconnect", "calibration") + _RAW_SECTIONS
_REQUIRED = ("name", "kind", "clock", "compute", "memory")
# field -> quantity kind (None: not a quantity). `instances`: copies of the level (one SMEM
# per SM); `capacity` is then the total over all copies.
_MEMORY_FIELDS = {"name": None, "capacity": "bytes", "bandwidth": "bandwidth",
                  "energy": "energy_per_byte", "latency": "time", "instances": None}
_MEMORY_REQUIRED = ("name", "capacity", "bandwidth")
_ENERGY_FIELDS = ("per_flop", "static_power")
_POWER_FIELDS = ("tdp",)


def _msg(source: str, fld: str, value, expected: str) -> str:
    # Same shape as workloads.io.fail, but returned so that all problems can be collected.
    where = f"{source}: {fld}" if fld else source
    shown = "missing" if value is None else short_repr(value)  # bounded, never the whole value
    return f"{where}: got {shown}; expected {expected}"


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# ---------------------------------------------------------------------------- resolving names

def list_hw() -> list[str]:
    """Names of the bundled hardware files (cosim/configs/hw/*.yaml)."""
    return bundled_names("hw")


def _looks_like_path(text: str) -> bool:
    return looks_like_path(text)


def hw_path(name_or_path, warn: bool = True) -> Path:
    """Bare name -> bundled file path; anything path-like -> that path (not checked here). `warn=False`
    for a name a file gives (not the caller): no ShadowedNameWarning for it (workloads.io.resolve_bundled)."""
    if isinstance(name_or_path, os.PathLike):
        return Path(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise HardwareError(_msg("hw", "", name_or_path,
                                 "a bundled hardware name (see list_hw()) or a path to a .yaml file"))
    return resolve_bundled("hw", name_or_path, "hardware", HardwareError, warn=warn)


# ---------------------------------------------------------------------------- reading (cached)

@lru_cache(maxsize=128)
def _read_cached(path: str, mtime_ns: int, size: int, what: str):
    # load_yaml_file refuses duplicate keys at every depth, alias bombs and huge files
    return load_yaml_file(path, what)


def _read(path: Path, what: str):
    """Parsed YAML document (a private deep copy: callers may edit it)."""
    if not path.is_file():
        load_yaml_file(path, what)  # raises the InputError naming the missing file
    try:
        st = path.stat()
        doc = _read_cached(str(path), st.st_mtime_ns, st.st_size, what)
    except (OSError, UnicodeDecodeError) as e:
        raise HardwareError(_msg(str(path), "", type(e).__name__,
                                 f"a readable UTF-8 text {what} file ({e})")) from None
    return copy_tree(doc)


def _calibration_path(path: Path, cal: str, src: str) -> tuple[Path, str]:
    """The calibration file named relative to the hardware file; when a bundled hardware
    file was copied elsewhere without its calibration/ folder, the bundled calibration of
    that name — with a note that travels into every op's provenance (never silent)."""
    cpath = (path.parent / cal).resolve()
    if cpath.is_file():
        return cpath, ""
    bundled = bundled_dir("hw") / "calibration" / Path(cal).name
    if bundled.is_file():
        return Path(str(bundled)), f"bundled calibration/{Path(cal).name} ({cal!r} is not beside {path.name})"
    raise HardwareError(_msg(src, "calibration", cal,
                             f"an existing YAML file relative to {path.parent} (no file {cpath}) or the name "
                             f"of a bundled calibration ({', '.join(p.name for p in (bundled_dir('hw') / 'calibration').iterdir() if p.name.endswith('.yaml'))})"))


def _merge_calibration(doc: dict, path: Path, src: str) -> None:
    cal = doc.get("calibration")
    if cal is None:
        return
    if isinstance(cal, dict):  # {from: <sibling gpu>, sm_count: N}: family transfer (hwmodels.gpu_transfer)
        doc["analytical"] = _transferred_calibration(cal, path, src)
        return
    if not isinstance(cal, str) or not cal.strip():
        raise HardwareError(_msg(src, "calibration", cal,
                                 "a path (text) to a YAML file, relative to this hardware file"))
    cpath, note = _calibration_path(path, cal.strip(), src)
    _CAL_OF[str(path)] = str(cpath)
    cdoc = _read(cpath, "calibration")
    if not isinstance(cdoc, dict):
        raise HardwareError(_msg(str(cpath), "", type(cdoc).__name__,
                                 "a YAML mapping of analytical-model parameters"))
    from hwmodels.gpu_params import unknown_param_errors
    bad = unknown_param_errors(cdoc.get("params"), str(cpath))  # name the file the typo is in
    if bad:
        raise HardwareError(bad[0] if len(bad) == 1 else f"{cpath}: {len(bad)} problems:\n  " + "\n  ".join(bad))
    rc = cdoc.get("residual_correction")
    from hwmodels.gpu_residuals import LOADER_KEYS
    if isinstance(rc, dict) and any(k in rc for k in LOADER_KEYS):  # only the loader resolves where the table is
        key = next(k for k in LOADER_KEYS if k in rc)
        raise HardwareError(_msg(str(cpath), f"residual_correction.{key}", rc[key],
                                 "no such key in a calibration file (the table is read beside it, by its `table` name)"))
    if isinstance(rc, dict) and isinstance(rc.get("table"), str):  # the table lives beside the calibration file
        cdoc = {**cdoc, "residual_correction": {**rc, "path": str(cpath.parent / rc["table"]),
                                                "calibration": str(cpath)}}
    if note and isinstance(cdoc.get("provenance"), dict):
        cdoc = {**cdoc, "provenance": {**cdoc["provenance"], "note": note}}
    inline = doc.get("analytical")
    if inline is None:
        inline = {}
    if not isinstance(inline, dict):
        raise HardwareError(_msg(src, "analytical", inline, "a mapping (raw analytical-model section)"))
    # Calibration file first, inline keys of the hardware file win: a hand edit is the newer word.
    doc["analytical"] = {**cdoc, **inline}


def _transferred_calibration(cal: dict, path: Path, src: str) -> dict:
    """The sibling's calibration section plus a `transfer` block; the scaling itself happens
    where the parameters are read (hwmodels.gpu_transfer), against both datasheets."""
    bad = sorted(set(cal) - {"from", "sm_count"})
    if bad or not isinstance(cal.get("from"), str) or not cal["from"].strip():
        raise HardwareError(_msg(src, "calibration", cal, "a calibration file path, or {from: <calibrated "
                                 "sibling GPU>, sm_count: <this GPU's SM count>} (family transfer)"))
    sms = cal.get("sm_count")
    if isinstance(sms, bool) or not isinstance(sms, int) or sms < 1:
        raise HardwareError(_msg(src, "calibration.sm_count", sms, "this GPU's SM count, a positive integer "
                                 "(the transfer re-spreads the sibling's per-SM work over it)"))
    frm = cal["from"].strip()
    try:  # an unknown name or a missing file: said as this file's calibration.from (the typo is here)
        # the sibling is named by this file, not by the caller: a same-named local file is no note here
        spath = hw_path(frm, warn=False) if not _looks_like_path(frm) else (path.parent / frm).resolve()
        sdoc = _read(spath, "hardware")
    except InputError as e:
        raise field_error(src, "calibration.from", str(e), HardwareError) from None
    if not isinstance(sdoc, dict) or not isinstance(sdoc.get("calibration"), str):
        raise HardwareError(_msg(src, "calibration.from", frm, "a GPU with its own calibration file "
                                 "(`calibration: <file>` in its YAML; transfers do not chain)"))
    _merge_calibration(sdoc, spath, str(spath))
    return {**sdoc["analytical"], "transfer": {"from": frm, "source": str(spath), "sm_count": sms}}


# ---------------------------------------------------------------------------- overrides

def _override_kind(parts: list) -> str | None:
    """Quantity kind of an override target (so numbers can be given in SI base units)."""
    head = parts[0]
    if head == "clock":
        return "frequency"
    if head == "compute":
        return "flops"
    if head == "interconnect":
        return "bandwidth"
    if head == "memory":
        return _MEMORY_FIELDS.get(parts[-1])
    if head == "energy":
        return "energy_per_flop" if parts[1] == "per_flop" else "power"
    if head == "power":
        return "power"
    if head in ("accelerator", "fpga"):  # the cycle model's sections: buffer sizes and DRAM latency
        if (len(parts) == 3 and parts[1] == "sram") or parts[1:] == ["aie", "data_memory"]:
            return "bytes"
        if parts[1:] == ["dram_latency"]:
            return "time"
    return None


override_kind = _override_kind  # public name for callers outside this module (sweep plot ticks)


def _apply_overrides(doc: dict, overrides, src: str) -> None:
    if not isinstance(overrides, Mapping):
        raise HardwareError(_msg(src, "overrides", type(overrides).__name__,
                                 "a dict of dotted paths to values, e.g. {'memory.hbm.bandwidth': '4 TB/s'}"))
    for key, value in overrides.items():
        fld = f"overrides[{key!r}]"
        if not isinstance(key, str) or not key:
            raise HardwareError(_msg(src, fld, key, "a dotted path such as 'memory.hbm.bandwidth'"))
        parts = key.split(".")
        head = parts[0]
        if head not in _TOP_KEYS or head == "calibration" or any(not p for p in parts):
            raise HardwareError(_msg(src, fld, key, "a dotted path starting with one of "
                                     f"{', '.join(k for k in _TOP_KEYS if k != 'calibration')}"
                                     + _hint(head, _TOP_KEYS)))
        target, leaf = _override_target(doc, parts, src, fld)
        kind = _override_kind(parts)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and kind:
            value = format_quantity(value, kind)  # numbers in overrides are SI base units
        if value is None:
            if leaf not in target:
                raise HardwareError(_msg(src, fld, value, f"an existing field to delete; "
                                         f"{key!r} is not set"))
            del target[leaf]
        else:
            target[leaf] = value


def _sub(container: dict, key: str, src: str, fld: str) -> dict:
    """The mapping container[key], created when absent (overrides may add a section)."""
    if container.get(key) is None:
        container[key] = {}
    if not isinstance(container[key], dict):
        raise HardwareError(_msg(src, fld, container[key], f"a file whose '{key}' is a mapping to override"))
    return container[key]


def _override_target(doc: dict, parts: list, src: str, fld: str):
    """(container dict, leaf key) that a dotted override path names."""
    head = parts[0]
    key = ".".join(parts)
    if head in ("name", "kind", "description", "clock"):
        if len(parts) != 1:
            raise HardwareError(_msg(src, fld, key, f"just '{head}' (it has no sub-fields)"))
        return doc, head
    if head == "memory":
        levels = doc.get("memory")
        if len(parts) != 3:
            raise HardwareError(_msg(src, fld, key, "'memory.<level name or index>.<field>', "
                                     "e.g. 'memory.hbm.bandwidth'"))
        if not isinstance(levels, list):
            raise HardwareError(_msg(src, fld, key, "a file with a memory list to override"))
        names = [lv.get("name") for lv in levels if isinstance(lv, dict)]
        level = None
        if parts[1].isdigit() and int(parts[1]) < len(levels):
            level = levels[int(parts[1])]
        else:
            level = next((lv for lv in levels if isinstance(lv, dict) and lv.get("name") == parts[1]), None)
        if not isinstance(level, dict):
            raise HardwareError(_msg(src, fld, key, f"a memory level of this file ({', '.join(map(str, names))})"
                                     + _hint(parts[1], names)))
        if parts[2] not in _MEMORY_FIELDS or parts[2] == "name":
            fields = [f for f in _MEMORY_FIELDS if f != "name"]
            raise HardwareError(_msg(src, fld, key, f"a memory field ({', '.join(fields)})"
                                     + _hint(parts[2], fields)))
        return level, parts[2]
    if head in ("compute", "interconnect"):
        if len(parts) != 2:
            raise HardwareError(_msg(src, fld, key, f"'{head}.<name>'"))
        return _sub(doc, head, src, fld), parts[1]
    if head == "energy":
        ok = (len(parts) == 3 and parts[1] == "per_flop") or (len(parts) == 2 and parts[1] == "static_power")
        if not ok:
            raise HardwareError(_msg(src, fld, key, "'energy.per_flop.<format>' or 'energy.static_power'"))
        energy = _sub(doc, "energy", src, fld)
        return (_sub(energy, "per_flop", src, fld), parts[2]) if len(parts) == 3 else (energy, parts[1])
    if head == "power":
        if parts[1:] != ["tdp"]:
            raise HardwareError(_msg(src, fld, key, "'power.tdp'"))
        return _sub(doc, "power", src, fld), "tdp"
    # Raw sections: the parent mappings must exist (a typo must not create a new branch).
    node = doc.get(head)
    if len(parts) < 2 or not isinstance(node, dict):
        raise HardwareError(_msg(src, fld, key, f"'{head}.<key>' in a file that has a '{head}' mapping"))
    for i, p in enumerate(parts[1:-1], start=1):
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            raise HardwareError(_msg(src, fld, key, f"an existing mapping at '{'.'.join(parts[:i + 1])}'"
                                     + _hint(p, node)))
        node = nxt
    return node, parts[-1]


# ---------------------------------------------------------------------------- validation

@lru_cache(maxsize=1)
def _alias_groups() -> dict:
    """Registered names that denote the same encoding (mxfp4 / mxfp4_e2m1, msfp16 / bfp16):
    a device that computes one computes the other, so the loader lists both."""
    groups: dict = {}
    for f in list_formats():
        groups.setdefault(replace(f, name="", description=""), []).append(f.name)
    return {n: tuple(g) for g in groups.values() if len(g) > 1 for n in g}


class _Checker:
    """Collects every problem of one document; `qty` returns None after recording one."""

    def __init__(self, src: str):
        self.src = src
        self.errors: list[str] = []

    def err(self, fld, value, expected):
        self.errors.append(_msg(self.src, fld, value, expected))

    def qty(self, value, kind, fld, allow_zero=False):
        if value is None:
            self.err(fld, None, f"a {kind} quantity in {BASE_UNIT[kind]}-compatible units")
            return None
        try:
            return parse_quantity(value, kind, self.src, fld, allow_zero=allow_zero)
        except InputError as e:
            self.errors.append(str(e))
            return None

    def mapping(self, value, fld, expected) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(fld, value, expected)
            return {}
        return value

    def known_keys(self, mapping: dict, allowed, prefix: str):
        for k in mapping:
            if k not in allowed:
                self.err(f"{prefix}{k}", k, f"one of {', '.join(allowed)}" + _hint(k, allowed))


def _check_top(c: "_Checker", doc: dict):
    """Top-level keys: known and required ones, name, kind, description, clock."""
    for k in doc:
        if k not in _TOP_KEYS:
            c.err(str(k), k, f"a known top-level key ({', '.join(_TOP_KEYS)})" + _hint(k, _TOP_KEYS))
    for k in _REQUIRED:
        if doc.get(k) is None:
            c.err(k, None, {"name": "a name (text)", "kind": f"one of {', '.join(HW_KINDS)}",
                            "clock": "a frequency such as '1.83 GHz'",
                            "compute": "a mapping of format name -> dense peak, e.g. {bf16: 989.4 TFLOP/s}",
                            "memory": "a list of memory levels, outermost first"}[k])

    name = doc.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        c.err("name", name, "a non-empty name (text)")
    kind = doc.get("kind")
    if kind is not None and kind not in HW_KINDS:
        c.err("kind", kind, f"one of {', '.join(HW_KINDS)}" + _hint(kind, HW_KINDS))
    desc = doc.get("description", "")
    if desc is not None and not isinstance(desc, str):
        c.err("description", desc, "text")
    clock = c.qty(doc["clock"], "frequency", "clock") if doc.get("clock") is not None else None
    return name, kind, desc, clock


def _format_keyed(c: "_Checker", mapping: dict, prefix: str):
    """(canonical format, key, value, field) for each entry of a mapping keyed by number-format
    names (compute peaks, energy per FLOP); a name the registry does not know is an error."""
    for key, value in mapping.items():
        fld = f"{prefix}.{key}"
        try:
            yield get_format(str(key)).name, key, value, fld
        except FormatError as e:
            c.err(fld, key, f"a registered number-format name ({e})")


def _check_compute(c: "_Checker", doc: dict):
    """compute: registered format names -> dense peaks, stored under canonical names (and
    their aliases). Returns (peaks, the raw mapping)."""
    peaks: dict = {}
    compute = c.mapping(doc.get("compute"), "compute", "a mapping of format name -> dense peak")
    if doc.get("compute") is not None and isinstance(doc.get("compute"), dict) and not compute:
        c.err("compute", compute, "at least one format with its dense peak, e.g. {bf16: 989.4 TFLOP/s}")
    for fmt, key, value, fld in _format_keyed(c, compute, "compute"):
        v = c.qty(value, "flops", fld)
        if fmt in peaks:
            c.err(fld, key, f"each format once (it repeats {fmt!r})")
        elif v is not None:
            peaks[fmt] = v
    for fmt, v in list(peaks.items()):
        for alias in _alias_groups().get(fmt, ()):
            if alias in peaks and peaks[alias] != v:
                c.err(f"compute.{alias}", alias, f"the same peak as its alias {fmt!r} ({v:.6g} FLOP/s)")
            peaks.setdefault(alias, v)
    return peaks, compute


def _check_memory(c: "_Checker", doc: dict) -> list:
    """memory: a list of levels, outermost first."""
    memory = []
    levels = doc.get("memory")
    if levels is not None and (not isinstance(levels, list) or not levels):
        c.err("memory", levels, "a non-empty list of memory levels, outermost first, e.g. "
                                "[{name: hbm, capacity: 80 GB, bandwidth: 3.35 TB/s}]")
        levels = []
    seen = set()
    for i, lv in enumerate(levels or []):
        if not isinstance(lv, dict):
            c.err(f"memory[{i}]", lv, "a mapping with name, capacity, bandwidth (and optional "
                                      "energy, latency, instances)")
            continue
        lname = lv.get("name")
        label = f"memory.{lname}" if isinstance(lname, str) and lname else f"memory[{i}]"
        c.known_keys(lv, tuple(_MEMORY_FIELDS), label + ".")
        for req in _MEMORY_REQUIRED:
            if lv.get(req) is None:
                c.err(f"{label}.{req}", None, {"name": "a level name such as hbm or l2",
                                               "capacity": "a size such as '80 GB'",
                                               "bandwidth": "a bandwidth such as '3.35 TB/s'"}[req])
        if lname is not None and (not isinstance(lname, str) or not lname.strip()):
            c.err(f"{label}.name", lname, "a level name (text)")
        elif lname in seen:
            c.err(f"{label}.name", lname, "a name not used by another level")
        seen.add(lname if isinstance(lname, str) else None)
        vals = {f: (c.qty(lv[f], k, f"{label}.{f}") if lv.get(f) is not None else None)
                for f, k in _MEMORY_FIELDS.items() if k}
        inst = lv.get("instances", 1)
        if isinstance(inst, bool) or not isinstance(inst, int) or inst < 1:
            c.err(f"{label}.instances", inst, "a positive whole number of copies (capacity is their total)")
            inst = None
        if all(vals[f] is not None for f in ("capacity", "bandwidth")) and isinstance(lname, str) and inst:
            memory.append(MemoryLevel(name=lname, capacity_bytes=vals["capacity"],
                                      bandwidth_Bps=vals["bandwidth"],
                                      energy_per_byte_j=vals["energy"], latency_s=vals["latency"],
                                      instances=inst))
    return memory


def _check_energy(c: "_Checker", doc: dict, peaks: dict, compute: dict, memory: list):
    """power.tdp, energy.static_power and energy.per_flop, with the physics checks that
    catch unit slips (nothing may draw more than the TDP at peak)."""
    power = c.mapping(doc.get("power"), "power", "a mapping such as {tdp: 700 W}")
    c.known_keys(power, _POWER_FIELDS, "power.")
    tdp = c.qty(power["tdp"], "power", "power.tdp") if power.get("tdp") is not None else None
    energy = c.mapping(doc.get("energy"), "energy", "a mapping with per_flop and/or static_power")
    c.known_keys(energy, _ENERGY_FIELDS, "energy.")
    static = (c.qty(energy["static_power"], "power", "energy.static_power", allow_zero=True)
              if energy.get("static_power") is not None else None)
    if static is not None and tdp is not None and static > tdp:
        c.err("energy.static_power", energy["static_power"], f"at most the TDP ({tdp:g} W)")
    per_flop: dict = {}
    for fmt, key, value, fld in _format_keyed(c, c.mapping(energy.get("per_flop"), "energy.per_flop",
                                                           "a mapping of format name -> energy per FLOP"),
                                              "energy.per_flop"):
        if fmt not in peaks and compute:
            if key not in compute and fmt not in compute:  # a listed peak that was refused is reported there
                c.err(fld, key, f"a format listed under compute ({', '.join(compute)})")
            continue
        e = c.qty(value, "energy_per_flop", fld)
        if e is None:
            continue
        # Physics check that catches pJ/nJ slips: compute alone at peak cannot exceed TDP.
        if tdp is not None and fmt in peaks and e * peaks[fmt] > tdp * 1.001:
            c.err(fld, value, f"at most TDP/peak = {tdp / peaks[fmt]:.3g} J/FLOP (this value "
                              f"would draw {e * peaks[fmt]:.0f} W at peak, over the {tdp:g} W TDP)")
            continue
        per_flop[fmt] = e
        for alias in _alias_groups().get(fmt, ()):
            per_flop.setdefault(alias, e)
    if tdp is not None:
        for lv in memory:
            if lv.energy_per_byte_j is not None and lv.energy_per_byte_j * lv.bandwidth_Bps > tdp * 1.001:
                c.err(f"memory.{lv.name}.energy", lv.energy_per_byte_j,
                      f"at most TDP/bandwidth = {tdp / lv.bandwidth_Bps:.3g} J/B (streaming at full "
                      f"bandwidth would draw {lv.energy_per_byte_j * lv.bandwidth_Bps:.0f} W)")
    return tdp, static, per_flop


def _check(doc, src: str, path: Path, overrides) -> HardwareSpec:
    """Validate a hardware mapping, collecting every problem (file, field, value,
    expectation) before raising one error that lists them all."""
    c = _Checker(src)
    if not isinstance(doc, dict):
        raise HardwareError(_msg(src, "", type(doc).__name__ if doc is not None else "an empty file",
                                 "a YAML mapping with keys " + ", ".join(_REQUIRED)))
    name, kind, desc, clock = _check_top(c, doc)
    peaks, compute = _check_compute(c, doc)
    memory = _check_memory(c, doc)
    tdp, static, per_flop = _check_energy(c, doc, peaks, compute, memory)
    links = {}
    for key, value in c.mapping(doc.get("interconnect"), "interconnect",
                                "a mapping of link name -> per-direction bandwidth").items():
        v = c.qty(value, "bandwidth", f"interconnect.{key}")
        if v is not None:
            links[str(key)] = v
    sections = {}
    for sec in _RAW_SECTIONS:
        if doc.get(sec) is not None:
            sections[sec] = c.mapping(doc[sec], sec, f"a mapping (raw {sec} section)")
    c.errors += _section_key_errors(sections, src)
    if overrides:
        sections["overrides"] = dict(overrides)

    if c.errors:
        if len(c.errors) == 1:
            raise HardwareError(c.errors[0])
        raise HardwareError(f"{src}: {len(c.errors)} problems:\n  " + "\n  ".join(c.errors))
    return HardwareSpec(name=name.strip(), kind=kind, clock_hz=clock, peak_flops=peaks,
                        memory=tuple(memory), energy_per_flop_j=per_flop, static_power_w=static,
                        tdp_w=tdp, interconnect=links, sections=sections,
                        description=(desc or "").strip(), source=str(path))


def _section_key_errors(sections: dict, src: str) -> list:
    """Typos inside the raw sections (accelerator.pe.lanse, analytical: {paramz: ...})
    would otherwise be ignored: their keys are checked against workloads.schema tables and,
    for the analytical section, against its top-level keys and hwmodels.gpu.PARAMS."""
    from workloads.schema import ACCELERATOR_FIELDS, FPGA_FIELDS, Field, check
    errors: list = []
    for sec, table in (("accelerator", ACCELERATOR_FIELDS), ("fpga", FPGA_FIELDS)):
        if isinstance(sections.get(sec), dict):
            check(sections[sec], table, src, f"{sec}.", errors)
            errors += _array_value_errors(sections[sec], src, sec)
    ana = sections.get("analytical")
    if isinstance(ana, dict):
        # top-level keys; the names under params: against the parameter table (unknown_param_errors)
        table = {k: Field("any") for k in ("model", "provenance", "structure", "fit_quality", "from", "transfer",
                                           "params", "residual_correction")}
        check(ana, table, src, "analytical.", errors)
        from hwmodels.gpu_params import unknown_param_errors
        errors += unknown_param_errors(ana.get("params"), src)
    return errors


def _array_value_errors(sec: dict, src: str, name: str) -> list:
    """Values of an accelerator: / fpga: section that the field table's types do not catch, reported with
    every other problem of the file (the array model re-checks them when it is built, hwmodels.accel)."""
    from hwmodels.systolic import DATAFLOWS
    out = []
    df = sec.get("dataflow")
    if isinstance(df, str) and df.lower() not in DATAFLOWS:
        out.append(_msg(src, f"{name}.dataflow", df, f"one of {', '.join(DATAFLOWS)} (output / weight / input "
                                                     f"stationary)" + _hint(df.lower(), DATAFLOWS)))
    vec = sec.get("vector")
    fpl = vec.get("flops_per_lane") if isinstance(vec, dict) else None
    if isinstance(fpl, (int, float)) and not isinstance(fpl, bool) and fpl == 0:
        out.append(_msg(src, f"{name}.vector.flops_per_lane", fpl, "a number > 0 (FLOP per vector lane per cycle)"))
    return out


def load_hw(name_or_path, overrides: Mapping | None = None) -> HardwareSpec:
    """Load a hardware spec: a bundled name ("h100_sxm", see `list_hw()`) or a path to a
    YAML file. `overrides` maps dotted paths to values applied before validation, e.g.
    ``{"memory.hbm.bandwidth": "4 TB/s", "compute.fp4_e2m1": "3958 TFLOP/s", "clock": 2e9}``
    (numbers are SI base units; None deletes a field). Bad input raises HardwareError
    (an InputError) naming file, field, value and expectation."""
    if isinstance(name_or_path, HardwareSpec):
        if overrides:
            raise HardwareError(_msg(name_or_path.source or name_or_path.name, "overrides", overrides,
                                     "no overrides for an already-built HardwareSpec; pass its name or path"))
        return name_or_path
    if not overrides and isinstance(name_or_path, str):
        hit = _BY_NAME.get(name_or_path)
        if hit is not None and _file_key(hit[0]) == hit[1]:
            warn_shadowed(name_or_path, hit[0], "hardware")  # as hw_path does for a bare name (once)
            return hit[2]
    path = hw_path(name_or_path)
    key = None if overrides else _file_key(path)
    if key is not None and key in _SPEC_CACHE:
        return _SPEC_CACHE[key]
    spec = _load_hw_uncached(path, overrides, name_or_path)
    key = None if overrides else _file_key(path)  # now knows the calibration file, if any
    if key is not None and len(_SPEC_CACHE) < 256:
        _SPEC_CACHE[key] = spec
        if isinstance(name_or_path, str):
            _BY_NAME[name_or_path] = (path, key, spec)
    return spec


# Built specs by (file, mtime, size) and those of the calibration files they merged:
# a spec is immutable, so the same file unchanged gives the same spec (loading the
# YAML and validating every field took ~0.7 ms a call, more than a whole roofline).
_SPEC_CACHE: dict = {}


_BY_NAME: dict = {}  # the name or path text a caller passed -> (file, key, spec)


def _file_key(path: Path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    cal = _CAL_OF.get(str(path))
    parts = [(str(path), st.st_mtime_ns, st.st_size)]
    if cal is not None:
        try:
            cst = os.stat(cal)
        except OSError:
            return None
        parts.append((cal, cst.st_mtime_ns, cst.st_size))
    return tuple(parts)


_CAL_OF: dict = {}  # hardware file -> the calibration file it names (filled on first load)


def _load_hw_uncached(path: Path, overrides, name_or_path) -> HardwareSpec:
    src = str(path)
    if not path.is_file() and path.suffix in (".yaml", ".yml") and path.stem in list_hw():
        raise HardwareError(_msg(src, "", str(name_or_path), f"an existing hardware file; for the "
                                 f"bundled one pass the bare name {path.stem!r}"))
    doc = _read(path, "hardware")
    if not isinstance(doc, dict):
        _check(doc, src, path, None)  # raises the "expected a mapping" error
    _merge_calibration(doc, path, src)
    had_clock = doc.get("clock") is not None
    if overrides:
        _apply_overrides(doc, overrides, src)
        src = f"{src} (with overrides)"
    return _array_peaks(_check(doc, src, path, overrides), doc.get("compute"), path, overrides, had_clock)


def _array_peaks(spec: HardwareSpec, compute, path: Path, overrides, had_clock: bool) -> HardwareSpec:
    """The spec with its accelerator: / fpga: section validated (the array it describes is built here, so a
    bad field is refused at load by every level, not only at the cycle level) and its compute peaks scaled to
    the clock and array of its overrides (hwmodels.peak_scaling: the one rule every level and sweep path
    prices). A file's own compute: figures of its array formats must be its array's peaks."""
    from hwmodels.peak_scaling import array_config, check_stated_peaks, scaled_spec, touches_peaks
    if not overrides:
        cfg = array_config(spec)
        bad = check_stated_peaks(spec, cfg, compute, str(path)) if cfg is not None and isinstance(compute, dict) \
            else []
        if bad:
            raise HardwareError(bad[0] if len(bad) == 1 else f"{path}: {len(bad)} problems:\n  " + "\n  ".join(bad))
        return spec
    has_array = "accelerator" in spec.sections or "fpga" in spec.sections
    if not touches_peaks(overrides):
        if has_array:
            load_hw(path)  # the file's own figures checked against its array (cached), as without overrides
            array_config(spec)  # an override that makes the section invalid (a buffer too small) is refused here
        return spec
    if not had_clock:  # the file has none; the override's clock let the document pass the checks
        raise HardwareError(_msg(str(path), "overrides['clock']", overrides.get("clock"),
                                 f"a file that states its own clock ({path.name} has none): its compute peaks "
                                 "are stated at that clock, and a clock override scales them from it "
                                 "(hwmodels.peak_scaling); add `clock:` to the file"))
    return scaled_spec(load_hw(path), spec)
