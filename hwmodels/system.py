"""Multi-device systems: N devices of one `HardwareSpec` joined by a hierarchy of links.

A system file (cosim/configs/systems/<name>.yaml) names its device (a bundled hardware name or a
path relative to the file), how many devices share a node, how many nodes it has, and one
entry per link level (``intra_node`` and, for multi-node systems, ``inter_node``): per-device
per-direction bandwidth, per-step latency, energy per bit, topology, and whether the
switch reduces in the network (NVLink SHARP / InfiniBand SHARP). Every number carries its
source and status (V/R/D/U) in a comment, as in cosim/configs/hw.

Loading follows hwmodels.spec: a bare name resolves to the bundled file, a path is taken as
given, dotted overrides (``{"links.intra_node.bandwidth": "900 GB/s", "nodes": 2,
"device.memory.hbm.capacity": "141 GB"}``) apply before validation, and every problem is
reported with the file, field, bad value and what was expected.
"""

from __future__ import annotations

import re

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hwmodels.collective_calibration import CollectiveCalibration, parse_calibration  # noqa: F401
from hwmodels.spec import HardwareError, HardwareSpec, _Checker, _hint, _msg, _read, hw_path, load_hw
from hwmodels.units import format_quantity
from workloads.io import bundled_dir, doc_kind, warn_shadowed

__all__ = ["SystemSpec", "LinkSpec", "is_regime_protocol", "load_system", "list_systems", "system_path", "TOPOLOGIES",
           "LINK_SCOPES"]

TOPOLOGIES = ("switch", "mesh", "ring", "torus2d", "torus3d")
LINK_SCOPES = ("intra_node", "inter_node")
_TOP_KEYS = ("name", "description", "device", "devices_per_node", "nodes", "links", "collectives")
_REQUIRED = ("name", "device", "devices_per_node", "links")
_LINK_FIELDS = {"name": None, "topology": None, "bandwidth": "bandwidth", "latency": "time",
                "energy": "energy_per_byte", "in_switch_reduction": None, "dims": None,
                "base_latency": "time"}
_LINK_REQUIRED = ("topology", "bandwidth", "latency")
_COLLECTIVE_KEYS = ("efficiency", "provenance", "launch", "calibration")


@dataclass(frozen=True)
class LinkSpec:
    """One level of the link hierarchy, as seen by one device."""
    scope: str  # intra_node | inter_node
    name: str
    topology: str  # switch | mesh (full point-to-point) | ring | torus2d | torus3d
    bandwidth_Bps: float  # per device, per direction
    latency_s: float  # per algorithm step (the alpha of an alpha-beta model)
    energy_per_byte_j: float | None = None
    in_switch_reduction: bool = False  # NVLS / SHARP: the switch adds the operands
    dims: tuple = ()  # torus extents (devices per ring in each dimension)
    base_latency_s: float = 0.0  # fixed cost of launching one collective


@dataclass(frozen=True)
class SystemSpec:
    name: str
    device: HardwareSpec
    devices_per_node: int
    nodes: int
    links: dict  # scope -> LinkSpec
    collectives: dict = field(default_factory=dict)  # analytical-level fitted efficiencies
    description: str = ""
    source: str = ""
    # collectives.calibration, parsed once at load (hwmodels.collective_calibration); not kept in `collectives`,
    # so a copy made with dataclasses.replace carries exactly one calibration: this one
    calibration: "CollectiveCalibration | None" = None

    @property
    def devices(self) -> int:
        return self.devices_per_node * self.nodes

    def link(self, scope: str) -> LinkSpec:
        if scope not in self.links:
            raise HardwareError(_msg(self.source or self.name, f"links.{scope}", None,
                                     f"a '{scope}' link: this collective spans "
                                     f"{'nodes' if scope == 'inter_node' else 'devices of a node'}, "
                                     f"but the system lists only {', '.join(self.links)}"))
        return self.links[scope]


# ---------------------------------------------------------------------------- names and paths

def _bundled_dir():
    return bundled_dir("systems")


def list_systems() -> list[str]:
    return sorted(p.name[:-5] for p in _bundled_dir().iterdir() if p.name.endswith(".yaml"))


def system_path(name_or_path, warn: bool = True) -> Path:
    """Bare name -> bundled system file; a path -> that path. `warn=False` for a name a file gives (not the
    caller): no ShadowedNameWarning for it (workloads.io.resolve_bundled's rule)."""
    if isinstance(name_or_path, os.PathLike):
        return Path(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise HardwareError(_msg("system", "", name_or_path, "a bundled system name or a .yaml path"))
    text = name_or_path.strip()
    if "/" in text or os.sep in text or text.endswith((".yaml", ".yml")):
        return Path(text).expanduser()
    names = list_systems()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=4, cutoff=0.4)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise HardwareError(_msg("system", "name", text, f"a bundled system name{hint}; bundled: "
                                 f"{', '.join(names)}; or a path to your own .yaml file"))
    path = _bundled_dir() / f"{text}.yaml"
    if warn:
        warn_shadowed(text, path, "system")  # a same-named local file is not read: said (workloads.io)
    return path


# ---------------------------------------------------------------------------- overrides

def _split_overrides(overrides, src):
    """(system-document overrides, device overrides) from one dotted-path dict."""
    if overrides is None:
        return {}, {}
    if not isinstance(overrides, Mapping):
        raise HardwareError(_msg(src, "overrides", type(overrides).__name__,
                                 "a dict of dotted paths, e.g. {'links.intra_node.bandwidth': '900 GB/s'}"))
    own, dev = {}, {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise HardwareError(_msg(src, f"overrides[{key!r}]", key, "a dotted path"))
        if key.startswith("device."):
            dev[key[len("device."):]] = value
        else:
            own[key] = value
    return own, dev


def _apply(doc: dict, overrides: dict, src: str) -> None:
    for key, value in overrides.items():
        fld = f"overrides[{key!r}]"
        parts = key.split(".")
        head = parts[0]
        if head not in _TOP_KEYS or any(not p for p in parts):
            raise HardwareError(_msg(src, fld, key, f"a dotted path starting with one of "
                                     f"{', '.join(_TOP_KEYS)} (device fields: 'device.<hw path>')"
                                     + _hint(head, _TOP_KEYS)))
        if head == "links":
            if len(parts) != 3 or parts[1] not in LINK_SCOPES or parts[2] not in _LINK_FIELDS:
                raise HardwareError(_msg(src, fld, key, f"'links.<{'|'.join(LINK_SCOPES)}>.<field>' with field "
                                         f"one of {', '.join(_LINK_FIELDS)}"))
            kind = _LINK_FIELDS[parts[2]]
            if isinstance(value, (int, float)) and not isinstance(value, bool) and kind:
                value = format_quantity(value, kind)  # numbers in overrides are SI base units
            links = doc.setdefault("links", {})
            if not isinstance(links, dict):
                raise HardwareError(_msg(src, fld, key, "a file whose 'links' is a mapping"))
            links.setdefault(parts[1], {})[parts[2]] = value
        elif len(parts) != 1:
            raise HardwareError(_msg(src, fld, key, f"just '{head}' (it has no sub-fields)"))
        else:
            doc[head] = value


# ---------------------------------------------------------------------------- validation

def _check_link(c: _Checker, scope: str, lk) -> LinkSpec | None:
    label = f"links.{scope}"
    if not isinstance(lk, dict):
        c.err(label, lk, "a mapping with topology, bandwidth, latency (and energy, in_switch_reduction, dims)")
        return None
    c.known_keys(lk, tuple(_LINK_FIELDS), label + ".")
    for req in _LINK_REQUIRED:
        if lk.get(req) is None:
            c.err(f"{label}.{req}", None, {"topology": f"one of {', '.join(TOPOLOGIES)}",
                                           "bandwidth": "a per-device, per-direction bandwidth such as '450 GB/s'",
                                           "latency": "a per-step latency such as '0.47 us'"}[req])
    topo = lk.get("topology")
    if topo is not None and topo not in TOPOLOGIES:
        c.err(f"{label}.topology", topo, f"one of {', '.join(TOPOLOGIES)}" + _hint(topo, TOPOLOGIES))
    vals = {f: (c.qty(lk[f], k, f"{label}.{f}") if lk.get(f) is not None else None)
            for f, k in _LINK_FIELDS.items() if k}
    isr = lk.get("in_switch_reduction", False)
    if not isinstance(isr, bool):
        c.err(f"{label}.in_switch_reduction", isr, "true or false")
        isr = False
    if isr and topo != "switch":
        c.err(f"{label}.in_switch_reduction", isr, "false unless topology is switch (only a switch reduces in-network)")
    dims = lk.get("dims", [])
    want = {"torus2d": 2, "torus3d": 3}.get(topo, 0)
    if want and (not isinstance(dims, list) or len(dims) != want
                 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 2 for d in dims)):
        c.err(f"{label}.dims", dims, f"a list of {want} ring extents (each >= 2) for a {topo}")
        dims = []
    elif not want and dims:
        c.err(f"{label}.dims", dims, f"no dims for topology {topo} (dims describe a torus)")
    if any(vals[f] is None for f in ("bandwidth", "latency")) or topo not in TOPOLOGIES:
        return None
    return LinkSpec(scope=scope, name=str(lk.get("name") or scope), topology=topo,
                    bandwidth_Bps=vals["bandwidth"], latency_s=vals["latency"],
                    energy_per_byte_j=vals["energy"], in_switch_reduction=isr,
                    dims=tuple(dims or ()), base_latency_s=vals["base_latency"] or 0.0)


def _positive_int(c: _Checker, doc: dict, key: str, default=None):
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        c.err(key, v, "a positive whole number")
        return None
    return v


def _check(doc, src: str, device: HardwareSpec | None, dev_error: str | None) -> SystemSpec:
    c = _Checker(src)
    if not isinstance(doc, dict):
        raise HardwareError(_msg(src, "", doc_kind(doc), "a YAML mapping with keys " + ", ".join(_REQUIRED)))
    for k in doc:
        if k not in _TOP_KEYS:
            c.err(str(k), k, f"a known top-level key ({', '.join(_TOP_KEYS)})" + _hint(k, _TOP_KEYS))
    for k in _REQUIRED:
        if doc.get(k) is None:
            c.err(k, None, {"name": "a name (text)", "device": "a bundled hardware name or a path",
                            "devices_per_node": "a positive whole number",
                            "links": "a mapping with an intra_node link"}[k])
    if dev_error:
        c.errors.append(dev_error)
    per_node = _positive_int(c, doc, "devices_per_node") if doc.get("devices_per_node") is not None else None
    nodes = _positive_int(c, doc, "nodes", 1)
    links = {}
    raw = c.mapping(doc.get("links"), "links", "a mapping of scope (intra_node, inter_node) -> link")
    for scope, lk in raw.items():
        if scope not in LINK_SCOPES:
            c.err(f"links.{scope}", scope, f"one of {', '.join(LINK_SCOPES)}" + _hint(scope, LINK_SCOPES))
            continue
        spec = _check_link(c, scope, lk)
        if spec:
            links[scope] = spec
    if doc.get("links") is not None and "intra_node" not in raw:
        c.err("links.intra_node", None, "the link between devices of one node")
    if nodes and nodes > 1 and "inter_node" not in raw:
        c.err("links.inter_node", None, f"a link between nodes (the system has {nodes} nodes)")
    for scope, lk in links.items():
        if lk.dims and per_node and scope == "intra_node" and math.prod(lk.dims) != per_node:
            c.err(f"links.{scope}.dims", list(lk.dims), f"extents whose product is devices_per_node ({per_node})")
    coll = c.mapping(doc.get("collectives"), "collectives", "a mapping with efficiency (and provenance)")
    c.known_keys(coll, _COLLECTIVE_KEYS, "collectives.")
    _check_efficiency(c, coll.get("efficiency"))
    _check_line_coeffs(c, coll.get("efficiency"), links, per_node)
    _check_launch(c, coll.get("launch"))
    calibration, cal_errors = parse_calibration(coll.get("calibration"), src)
    c.errors.extend(cal_errors)
    name = doc.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        c.err("name", name, "a non-empty name (text)")
    if c.errors:
        if len(c.errors) == 1:
            raise HardwareError(c.errors[0])
        raise HardwareError(f"{src}: {len(c.errors)} problems:\n  " + "\n  ".join(c.errors))
    return SystemSpec(name=name.strip(), device=device, devices_per_node=per_node, nodes=nodes,
                      links=links, collectives={k: v for k, v in coll.items() if k != "calibration"},
                      description=str(doc.get("description") or "").strip(), source=src, calibration=calibration)


PROTOCOLS = ("ll", "ll128", "simple")  # NCCL's protocols: low latency / low bandwidth ... bulk
# A protocol may have more than one line, one per size regime, named <protocol>_<regime> (NVLS shrinks its chunk
# for small messages: `simple_small`); the faster line is priced, so the crossover is where the lines meet.
_REGIME_KEY = re.compile(r"^(ll|ll128|simple)(_[a-z0-9]+)?$")


def is_regime_protocol(key: str) -> bool:
    """A protocol key that names a size-regime line (``simple_small``), not a protocol's base line (``simple``).
    The one test of it: collective labels (``nvls/simple_small``) and the fit scripts use it too."""
    m = _REGIME_KEY.match(str(key))
    return bool(m and m.group(2))


def _check_efficiency(c: _Checker, eff) -> None:
    """collectives.efficiency: {scope: {algorithm: {bw, latency}}}, or per protocol
    {scope: {algorithm: {ll: {bw, latency}, simple: {bw, latency}}}}."""
    if eff is None:
        return
    if not isinstance(eff, dict):
        c.err("collectives.efficiency", eff, "a mapping scope -> algorithm -> {bw, latency}")
        return
    for scope, algs in eff.items():
        if scope not in LINK_SCOPES or not isinstance(algs, dict):
            c.err(f"collectives.efficiency.{scope}", algs, f"a scope ({', '.join(LINK_SCOPES)}) mapping algorithms")
            continue
        for alg, p in algs.items():
            fld = f"collectives.efficiency.{scope}.{alg}"
            if isinstance(p, dict) and p and "bw" not in p and all(_REGIME_KEY.match(str(k)) for k in p):
                for proto, q in p.items():
                    _check_fit(c, f"{fld}.{proto}", q)
            else:
                _check_fit(c, fld, p)


def _lines(eff):
    """(field, scope, algorithm, line) of every fitted line of a well-formed efficiency table."""
    for scope, algs in (eff or {}).items() if isinstance(eff, dict) else ():
        for alg, p in (algs or {}).items() if isinstance(algs, dict) else ():
            fld = f"collectives.efficiency.{scope}.{alg}"
            if not isinstance(p, dict):
                continue
            per_proto = [(fld, p)] if "bw" in p or not p else [(f"{fld}.{k}", q) for k, q in p.items()]
            for f, q in per_proto:
                if isinstance(q, dict):
                    yield f, scope, alg, q
                    if isinstance(q.get("alltoall"), dict):
                        yield f"{f}.alltoall", scope, alg, q["alltoall"]


def _check_line_coeffs(c: _Checker, eff, links: dict, per_node) -> None:
    """rank_coeff and group_coeff scale one algorithm's bandwidth with the group size; set on any other
    line they would be ignored, so they are refused there (hwmodels.collectives applies rank_coeff to
    NVLS, and group_coeff to a ring fitted on the full node of a switch, run by a smaller group of it)."""
    for fld, scope, alg, q in _lines(eff):
        if q.get("rank_coeff") is not None and alg != "nvls":
            c.err(f"{fld}.rank_coeff", q["rank_coeff"], f"no rank_coeff on {alg}: it scales NVLS lines only "
                                                         f"(efficiency.<scope>.nvls)")
        if q.get("group_coeff") is None:
            continue
        lk = links.get(scope)
        if alg != "ring" or scope != "intra_node":
            c.err(f"{fld}.group_coeff", q["group_coeff"], f"no group_coeff on {scope}.{alg}: it scales ring lines "
                                                           f"of the intra_node link only (efficiency.intra_node.ring)")
        elif (lk is not None and lk.topology != "switch") or (per_node is not None and per_node < 2):
            why = (f"links.intra_node is a {lk.topology}" if lk is not None and lk.topology != "switch"
                   else f"devices_per_node is {per_node}")
            c.err(f"{fld}.group_coeff", q["group_coeff"], f"no group_coeff here: it scales a ring fitted on a whole "
                                                           f"switched node run by fewer of its devices, and {why}")


def _check_launch(c: _Checker, launch) -> None:
    """collectives.launch: {single_process | graph: {law: floor|additive, a: time, b: time}} (hwmodels.launch)."""
    if launch is None:
        return
    if not isinstance(launch, dict) or set(launch) - {"single_process", "graph"}:
        c.err("collectives.launch", launch, "a mapping single_process and/or graph -> {law, a, b}")
        return
    for mode, p in launch.items():
        fld = f"collectives.launch.{mode}"
        if not isinstance(p, dict) or set(p) != {"law", "a", "b"}:
            c.err(fld, p, "a mapping with law (floor or additive), a (time per collective), b (time per driven GPU)")
            continue
        if p["law"] not in ("floor", "additive"):
            c.err(f"{fld}.law", p["law"], "floor or additive")
        c.qty(p["a"], "time", f"{fld}.a", allow_zero=True)
        c.qty(p["b"], "time", f"{fld}.b", allow_zero=True)


def _check_fit(c: _Checker, fld: str, p, nested: bool = False) -> None:
    if isinstance(p, dict) and not nested and isinstance(p.get("alltoall"), dict):
        # a line of its own for all-to-all on this algorithm (direct: all-to-all and send/recv share the p2p path but
        # not the measured rate; session 12b)
        _check_fit(c, f"{fld}.alltoall", p["alltoall"], nested=True)
        p = {k: v for k, v in p.items() if k != "alltoall"}
    if not isinstance(p, dict) or set(p) - {"bw", "latency", "fixed", "rank_coeff", "group_coeff"}:
        c.err(fld, p, f"a mapping with bw (fraction of link bandwidth), latency (per step) and optional fixed "
                      f"(per collective), rank_coeff (NVLS: bw x (1 - rank_coeff / n)) and group_coeff (ring: bw x "
                      f"(1 - g / n) / (1 - g / devices_per_node)), "
                      f"or one such mapping per protocol ({', '.join(PROTOCOLS)}, or <protocol>_<regime> for a "
                      f"second size regime)")
        return
    bw = p.get("bw")
    if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not 0 < bw <= 2:
        c.err(f"{fld}.bw", bw, "a fraction in (0, 2] of the link bandwidth (busbw / link)")
    if p.get("latency") is not None:
        c.qty(p["latency"], "time", f"{fld}.latency")
    if p.get("fixed") is not None:
        c.qty(p["fixed"], "time", f"{fld}.fixed")
    rc = p.get("rank_coeff")
    if rc is not None and (isinstance(rc, bool) or not isinstance(rc, (int, float)) or not 0 <= rc < 2):
        c.err(f"{fld}.rank_coeff", rc, "a number in [0, 2): NVLS bandwidth x (1 - rank_coeff / ranks)")
    gc = p.get("group_coeff")
    if gc is not None and (isinstance(gc, bool) or not isinstance(gc, (int, float)) or not 0 <= gc < 2):
        c.err(f"{fld}.group_coeff", gc, "a number in [0, 2): ring bandwidth x (1 - g / n) / (1 - g / devices_per_node)")


def _device(doc: dict, path: Path, src: str, dev_overrides: dict):
    dev = doc.get("device") if isinstance(doc, dict) else None
    if dev is None:
        return None, None
    if not isinstance(dev, str) or not dev.strip():
        return None, _msg(src, "device", dev, "a bundled hardware name (see `cosim list hw`) or a path")
    text = dev.strip()
    try:
        if "/" in text or text.endswith((".yaml", ".yml")):
            text = str((path.parent / text).resolve())
        else:  # the device is named by this file, not by the caller: its bundled file, no shadow note
            text = hw_path(text, warn=False)
        return load_hw(text, overrides=dev_overrides or None), None
    except HardwareError as e:
        return None, f"{src}: device: {e}"


def load_system(name_or_path, overrides: Mapping | None = None) -> SystemSpec:
    """Load a system: a bundled name ("dgx_h100", see `list_systems()`) or a YAML path.
    `overrides` maps dotted paths to values before validation; ``device.<path>`` keys go to
    the device's own hardware overrides."""
    if isinstance(name_or_path, SystemSpec):
        if overrides:
            raise HardwareError(_msg(name_or_path.source or name_or_path.name, "overrides", overrides,
                                     "no overrides for an already-built SystemSpec; pass its name or path"))
        return name_or_path
    path = system_path(name_or_path)
    src = str(path)
    doc = _read(path, "system")
    own, dev = _split_overrides(overrides, src)
    if isinstance(doc, dict) and own:
        _apply(doc, own, src)
    if overrides:
        src = f"{src} (with overrides)"
    device, dev_error = _device(doc, path, src, dev)
    return _check(doc, src, device, dev_error)
