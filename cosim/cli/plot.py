"""`cosim plot report.json --out roofline.png`: re-draw a saved report."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plot", help="draw the roofline plot of a saved report (.json)")
    p.add_argument("report", help="a report written with --out report.json")
    p.add_argument("--hw", help="hardware for the ceilings (default: the report's)")
    p.add_argument("--out", required=True, help="output image (.png or .svg)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli._paths import check_output_file
    from cosim.plots import roofline_plot

    check_output_file(args.out, "--out", (".png", ".svg", ".pdf"))
    from cosim.report import Report
    from hwmodels.spec import load_hw

    rep = Report.load(args.report)
    roofline_plot(rep, load_hw(args.hw or rep.hw), args.out)
    print(f"wrote {args.out}")
    return 0
