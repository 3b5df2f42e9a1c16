"""Up-front checks of the rules that tie sweep fields together: a `seq` within the model's
maximum context, a parallel layout that shards the model and fits the system, a profile that
does not contradict the attention form (attention "unfused" or H2O's prefill, which compute the
unfused algorithm, beside a profile naming a backend: workloads.builder.ProfileConflict). Each axis
value is checked alone by `cosim.dse.spec` (type, range, names); these rules need the other
fields a point pairs it with, so they are checked over the combinations the sweep can form.

Which is an error and which is a row:

- a value that fails in *every* combination the sweep pairs it with can never be priced:
  refused before any run, naming the file, the field (`axes[0].grid.seq[1]`), the value and
  what was expected (one failing combination and its reason), as `base` is refused;
- a value that fails only with some partners (seq 8192 on a 4K model, beside a model that
  holds it) is a legitimate corner of the design space: that point is an error row saying
  why, as a point that does not fit in memory is an infeasible row. A note says how many.

Only the fields a rule reads are combined (model, seq, batch, system, parallel.* for the context
and layout rules; model, phase, attention, recipe, profile, serve.profile for the attention form,
combined on their own), and only
the distinct values of each axis entry, so a million-point hardware sweep forms one
combination. Random ranges contribute their two ends; an end is not a point of the sweep, so a
failing combination that holds one is said as the range (and the part of it that fails with
those partners, bisected), never as a point, and combinations of discrete values are counted
once however many range ends they were paired with. Beyond MAX_COMBOS combinations the
check is skipped, with a note; those points still report their error in their row. A random
range is refused only when neither end can be priced; when one end fails (seq up to 8192 on a
4K model), most draws are still valid: the sweep runs, a warning names the failing part of the
range (bisected between the ends), and draws in it are error rows.
"""

from __future__ import annotations

import itertools
import warnings

from workloads.io import InputError

__all__ = ["check_combinations", "MAX_COMBOS"]

MAX_COMBOS = 20_000


def _layout_fields(f: str) -> bool:
    """What the context, prompt and layout rules read (_Rules)."""
    return f in ("model", "seq", "batch", "system", "prompt_len", "phase") or f.startswith("parallel.")


def _form_fields(f: str) -> bool:
    """What the attention-form rule reads (_FormRules): combined on their own, so they never multiply the other
    rules' combinations past MAX_COMBOS."""
    return f in ("model", "phase", "attention", "recipe", "profile", "serve.profile")


def _options(f: str, d: dict, where: str) -> list:
    """(value, path) of a random/search distribution: its choices, or the ends of its range."""
    if "choices" in d:
        return [(v, f"{where}.choices[{i}]") for i, v in enumerate(d["choices"])]
    ends = [(d["low_si"], f"{where}.low"), (d["high_si"], f"{where}.high")]
    return [(int(v) if d.get("int") or float(v).is_integer() else v, p) for v, p in ends]


def _entry_rows(kind: str, body: dict, where: str, _wanted) -> list:
    """The distinct combinations of the wanted fields one axis entry sets: [{field: (value, path)}]."""
    if kind == "zip":
        fields = [f for f in body if _wanted(f)]
        return [{f: (body[f][i], f"{where}.{f}[{i}]") for f in fields} for i in range(len(body[fields[0]]))] \
            if fields else []
    if kind == "grid":
        opts = {f: [(v, f"{where}.{f}[{i}]") for i, v in enumerate(vals)] for f, vals in body.items() if _wanted(f)}
    else:  # random
        opts = {f: _options(f, d, f"{where}.fields.{f}") for f, d in body["fields"].items() if _wanted(f)}
    if not opts:
        return []
    return [dict(zip(opts, c)) for c in itertools.product(*opts.values())]


def _blocks(axes, search, wanted) -> list:
    """Per universe (the axes' points; the search's trials, which vary only the search fields
    over the base), the per-entry row lists to combine."""
    out = []
    blocks = [rows for k, (kind, body) in enumerate(axes)
              if (rows := _entry_rows(kind, body, f"axes[{k}].{kind}", wanted))]
    if axes:
        out.append(blocks)
    if search:
        rows = _entry_rows("random", search, "search", wanted)
        out.append([rows] if rows else [])
    return out


class _Rules:
    """A model's maximum context; a decode step's prompt within its context; a parallel layout that shards the
    model and fits the system."""
    fields = staticmethod(_layout_fields)
    what = "model, seq, batch, prompt_len, phase, system and parallel values"

    def __init__(self, base):
        self.base = base
        self.models, self.systems = {}, {}

    def _model(self, name):
        from cosim.experiment import _path_or_name  # a relative path is relative to the base's file, as there
        from workloads.models import load_model
        if name not in self.models:
            self.models[name] = load_model(_path_or_name(name, self.base.base_dir))
        return self.models[name]

    def _system(self, name):
        from cosim.experiment import _path_or_name
        from hwmodels.system import load_system
        if name not in self.systems:
            self.systems[name] = load_system(_path_or_name(name, self.base.base_dir))
        return self.systems[name]

    def error(self, point: dict) -> tuple | None:
        """(why, the fields the broken rule reads) when a point with these values cannot be priced, or None."""
        from workloads.context import context_note
        b = self.base
        model = self._model(point.get("model", b.model))
        seq, batch = point.get("seq", b.seq), point.get("batch", b.batch)
        try:
            context_note(model, int(seq), b.allow_beyond_max_context, "point", "seq")
        except InputError as e:
            return str(e)[len("point: "):], {"seq", "model"}
        from workloads.builder import check_prompt_len  # build_trace's rule, asked before any point is built
        try:
            check_prompt_len(point.get("prompt_len", b.prompt_len), point.get("phase", b.phase), int(seq), "point")
        except InputError as e:
            return str(e)[len("point: "):], {"prompt_len", "seq", "phase"}
        return self._layout_error(point, model, batch)

    def _layout_error(self, point: dict, model, batch) -> tuple | None:
        from workloads.parallel import check_layout, parse_layout
        b = self.base
        varied = {f[len("parallel."):]: v for f, v in point.items() if f.startswith("parallel.")}
        system = point.get("system", b.system)
        if (b.parallel is None and not varied) or system is None:
            return None
        layout = {**(b.parallel_dict() if b.parallel is not None else {}), **varied}
        try:
            lay = parse_layout(layout)
            check_layout(lay, model, int(batch))
        except InputError as e:
            return str(e), {"parallel", "model", "batch"}
        sysspec = self._system(system)
        if lay.devices > sysspec.devices:
            return (f"parallel: layout {lay.label()} needs {lay.devices} devices; system {sysspec.name} has "
                    f"{sysspec.devices} (override 'nodes' for a larger cluster)"), {"parallel", "system"}
        return None


class _FormRules(_Rules):
    """A profile that does not contradict the attention form: attention "unfused" computes the unfused algorithm's
    kernels, and so does H2O's prefill unless the profile is Hugging Face eager's (whose probabilities it reads); a
    profile naming another backend prices other kernels (build_trace's ProfileConflict). A serving sweep's profile
    is under `serve`, and its prefill is where H2O's form shows."""
    fields = staticmethod(_form_fields)
    what = "model, phase, attention, recipe and profile values"

    def __init__(self, base):
        super().__init__(base)
        self.forms = {}

    def error(self, point: dict) -> tuple | None:
        from cosim.experiment import _path_or_name
        from workloads.builder import ProfileConflict, build_trace
        from workloads.profiles import get_profile
        b = self.base
        attention, recipe = point.get("attention", b.attention), point.get("recipe", b.recipe)
        serving = b.serve is not None
        profile = (point.get("serve.profile", b.serve_dict().get("profile")) if serving
                   else point.get("profile", b.profile))
        if not profile or (attention != "unfused" and not recipe) or get_profile(profile).attention == "default":
            return None  # a profile leaving attention to the default takes either form (its header names it)
        model = self._model(point.get("model", b.model))
        form = (model.name, "prefill" if serving else point.get("phase", b.phase), attention, recipe, profile)
        if form not in self.forms:
            try:  # one sequence at the base's length: the form does not depend on batch or length
                build_trace(model, phase=form[1], batch=1, seq=b.seq, attention=attention, profile=profile,
                            recipe=_path_or_name(recipe, b.base_dir) if recipe else None,
                            allow_beyond_max_context=True)
                self.forms[form] = None
            except ProfileConflict as e:
                self.forms[form] = str(e)
            except InputError:  # another rule: the point's row says it
                self.forms[form] = None
        why = self.forms[form]
        return None if why is None else (why, {"attention", "recipe", "profile", "serve"})


def _describe(point: dict) -> str:
    return ", ".join(f"{f} {v!r}" for f, v in point.items())


def _failing_part(f: str, low, high, bad_at_high: bool, partners: list, rules) -> tuple:
    """(lo, hi) of the part of the range [low, high] of field `f` in which no partner can price
    a draw, found by bisection between the failing end and the other (the rule is taken to flip
    once across the range)."""
    def fine(v):
        return any(rules.error({**p, f: v}) is None for p in partners)
    good, bad = (low, high) if bad_at_high else (high, low)
    integer = isinstance(low, int) and isinstance(high, int)
    for _ in range(200):
        if (abs(bad - good) <= 1) if integer else (abs(bad - good) <= 1e-9 * max(abs(bad), abs(good), 1)):
            break
        mid = (good + bad) // 2 if integer else (good + bad) / 2
        good, bad = (mid, bad) if fine(mid) else (good, mid)
    return (bad, high) if bad_at_high else (low, bad)


def _warn_part(source: str, bad_end: str, good_end: str, rng: dict, rules) -> None:
    """A random range one end of which no point can price and the other can: draws are still
    mostly valid, so the sweep runs and those draws are error rows; say which part fails (found
    by bisection between the ends, taking the rule to flip once across the range)."""
    f, low, high, plist = rng["field"], rng["low"], rng["high"], rng["partners"]
    plist = [dict(p) for p in {tuple(sorted(p.items())): p for p in plist}.values()]
    at_high = bad_end.endswith(".high")
    lo, hi = _failing_part(f, low, high, at_high, plist, rules)
    p = next(p for p in plist if rules.error({**p, f: high if at_high else low}) is not None)
    err = rules.error({**p, f: high if at_high else low})[0]
    warnings.warn(f"{source}: {bad_end.rsplit('.', 1)[0]}: the range [{low}, {high}] can be priced only in part: "
                  f"draws in [{lo}, {hi}] fail at every point (e.g. {f} {high if at_high else low!r}: "
                  f"{err}); they will be error rows", stacklevel=6)


def _warn_range_partners(source: str, bad: list, partners: dict, rules) -> None:
    """Combinations in which a random range's end cannot be priced, while each end can with other
    partners: the ends are not points of the sweep, so name the range and, where one range field is
    read by the broken rule, the part of it that fails with those partners; how many draws land
    there is known only when they are drawn. Combinations that differ only in fields the broken
    rule does not read count once."""
    cases = {}
    for point, refs, (err, reads) in bad:
        keep = {f: refs[f] for f in refs if f.split(".")[0] in reads} or refs
        key = tuple(sorted((f, v) for f, (v, _) in keep.items()))
        cases.setdefault(key, ({f: point[f] for f in keep}, keep, err))
    point, refs, err = next(iter(cases.values()))
    ranged = {f: path.rsplit(".", 1) for f, (v, path) in refs.items() if path.endswith((".low", ".high"))}
    fixed = {f: v for f, v in point.items() if f not in ranged}
    ranges = ", ".join(f"{where} [{partners[where]['low']}, {partners[where]['high']}]" for where, _ in ranged.values())
    if len(ranged) == 1:
        (f, (where, end)), = ranged.items()
        r = partners[where]
        lo, hi = _failing_part(f, r["low"], r["high"], end == "high", [fixed], rules)
        what = (f"with {_describe(fixed)}, " if fixed else "") + f"draws of {f} in [{lo}, {hi}] fail " \
                                                                f"(at {f} {point[f]!r}: {err})"
    else:
        ends = ", ".join(f"{f} {point[f]!r} (the {end} end of {where})" for f, (where, end) in ranged.items())
        what = f"e.g. ({', '.join(x for x in (_describe(fixed), ends) if x)}): {err}"
    others = len(cases) - 1
    warnings.warn(f"{source}: draws of the random range{'s' if len(ranged) > 1 else ''} {ranges} cannot be priced "
                  f"with some of their partners and will be error rows: {what}"
                  + (f" ({others} more case{'s' if others != 1 else ''} of a range end and its partners fail)"
                     if others else ""), stacklevel=6)


def check_combinations(base, axes, search, source: str) -> None:
    """Refuse a value no point can price (and a base no point can price); note how many
    combinations of otherwise valid values will be error rows. Each rule set over the
    combinations of the fields it reads."""
    # a serving point reads neither seq nor the experiment's layout: serve() checks its requests and its own
    # layout (error rows say why); its profile and attention form are checked here
    for rules in ([_FormRules(base)] if base.serve is not None else [_Rules(base), _FormRules(base)]):
        _check(rules, axes, search, source)


def _check(rules, axes, search, source: str) -> None:
    bad_combos, first_bad = 0, None
    ranged_bad, all_partners = [], {}  # failing combinations that hold a random range's end (not a point)
    seen_bad, warned = set(), set()
    for blocks in _blocks(axes, search, rules.fields):
        n = 1
        for rows in blocks:
            n *= len(rows)
        if n > MAX_COMBOS:
            warnings.warn(f"{source}: {n:,} combinations of {rules.what}: more "
                          f"than {MAX_COMBOS:,}, so they are not checked together up front; a point that cannot "
                          f"be priced is an error row saying why", stacklevel=5)
            continue
        ok, why, partners = {}, {}, {}
        for combo in itertools.product(*blocks):
            refs = {f: vp for row in combo for f, vp in row.items()}
            point = {f: v for f, (v, _) in refs.items()}
            bad = rules.error(point)
            if bad is not None and not refs:  # no axis sets these fields: the base itself cannot be priced
                raise InputError(f"{source}: base: {bad[0]}")
            for f, (v, path) in refs.items():
                ok[path] = ok.get(path, False) or bad is None
                if path.endswith((".low", ".high")):  # a random range's end: its partners, to find where it fails
                    rng, end = path.rsplit(".", 1)
                    r = partners.setdefault(rng, {"field": f, "partners": []})
                    r[end] = v
                    r["partners"].append({g: w for g, w in point.items() if g != f})
                if bad is not None and path not in why:
                    why[path] = (f.split(".")[0] in bad[1], v, point, bad[0])
            if bad is None:
                continue
            ends = {f for f, (_, p) in refs.items() if p.endswith((".low", ".high"))}  # a random range's ends
            if any(f.split(".")[0] in bad[1] for f in ends):  # the broken rule reads a range: some draws fail
                ranged_bad.append((point, refs, bad))
                continue
            values = tuple((f, v) for f, v in point.items() if f not in ends)  # a range end is no point: any draw
            if values not in seen_bad:
                seen_bad.add(values)
                bad_combos += 1
                first_bad = first_bad or (dict(values), bad[0])
        all_partners.update(partners)
        if ok and not any(ok.values()) and (bad := rules.error({})) is not None:
            raise InputError(f"{source}: base: {bad[0]} (every point of the sweep fails)")  # the base, not an axis
        never = [p for p, good in ok.items() if not good]
        for path in [p for p in never if p.endswith((".low", ".high"))]:
            other = path.rsplit(".", 1)[0] + (".high" if path.endswith(".low") else ".low")
            if ok.get(other):  # the range's other end can be priced: only part of the range fails
                never.remove(path)
                _warn_part(source, path, other, partners[path.rsplit(".", 1)[0]], rules)
                warned.add(path.rsplit(".", 1)[0])
        if never:  # a field the broken rule reads before one that only rides along (a zip row's other lists)
            path = next((p for p in never if why[p][0]), never[0])
            _, v, point, err = why[path]
            raise InputError(f"{source}: {path}: got {v!r}; expected a value some point of the sweep can "
                             f"price, but every point with it fails, e.g. ({_describe(point)}): {err}")
    if bad_combos:
        warnings.warn(f"{source}: {bad_combos:,} combination{'s' if bad_combos != 1 else ''} of valid values "
                      f"cannot be priced and will be error rows, e.g. ({_describe(first_bad[0])}): {first_bad[1]}",
                      stacklevel=5)
    # what _warn_part said (a part of a range no partner can price) is not said again
    ranged_bad = [b for b in ranged_bad if not any(p.rsplit(".", 1)[0] in warned for _, p in b[1].values())]
    if ranged_bad:
        _warn_range_partners(source, ranged_bad, all_partners, rules)
