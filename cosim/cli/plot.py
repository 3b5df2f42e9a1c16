"""`cosim plot report.json --out roofline.png`: re-draw a saved report."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plot", help="draw the roofline plot of a saved report (.json)")
    p.add_argument("report", help="a report written with --out report.json")
    p.add_argument("--hw", help="hardware for the ceilings (default: the report's)")
    p.add_argument("--out", required=True, help="output image (.png or .svg)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli._paths import check_output_file, ensure_parent
    from cosim.plots import roofline_plot

    check_output_file(args.out, "--out", (".png", ".svg", ".pdf"))
    from cosim.report import Report
    from cosim.simulate import _resolve
    from hwmodels.system import SystemSpec

    rep = Report.load(args.report)
    target = _resolve(args.hw or rep.hw)  # a report priced on a system: the ceilings are its device's
    device = target.device if isinstance(target, SystemSpec) else target
    title, notes = None, ()
    if args.hw:  # ceilings of another device under points priced on the report's: said in the title and a note
        own = _resolve(rep.hw)
        own = own.device if isinstance(own, SystemSpec) else own
        if own.name != device.name:
            title = (f"{rep.model} priced on {rep.hw}; ceilings of {device.name} (--hw): {rep.phase}, batch "
                     f"{rep.batch}, seq {rep.seq}")
            notes = (f"points priced on {rep.hw}, not re-priced on {device.name}: to compare, run "
                     f"`cosim roofline --hw {args.hw}` and plot that report",)
    roofline_plot(rep, device, ensure_parent(args.out, "--out"), title=title, extra_notes=notes)
    if notes:
        print(f"note: {notes[0]}")
    print(f"wrote {args.out}")
    return 0
