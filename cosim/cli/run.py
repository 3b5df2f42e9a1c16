"""`cosim run exp.yaml`: one experiment (accuracy + latency + energy) to a report."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("run", help="run an experiment file (accuracy + latency + energy)",
                       description="Run an experiment YAML (or a bundled name such as `quickstart`) and "
                                   "write report.csv, report.json and report.html.")
    p.add_argument("experiment", help="bundled experiment name (e.g. quickstart) or path to a YAML file")
    p.add_argument("--out", help="output directory (default: the file's `output`, else reports/<name>)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the functional accuracy check")
    p.add_argument("--interactive", action="store_true",
                   help="also write report_interactive.html, a roofline to hover over (needs the optional "
                        "extra: pip install 'cosim[interactive]')")
    p.add_argument("--top", type=int, default=10, help="ops shown in the printed table")
    p.add_argument("--force", action="store_true",
                   help="overwrite an earlier run's report files in the output directory (refused otherwise)")
    p.set_defaults(func=run)


def run(args) -> int:
    from cosim.cli.roofline import format_report
    from cosim.experiment import load_experiment, run_experiment

    if args.interactive:  # before loading or running anything (run_experiment checks it too)
        from cosim.interactive import require_plotly
        require_plotly()
    exp = load_experiment(args.experiment)
    out = Path(args.out or exp.output or f"reports/{exp.name}")
    from cosim.cli._paths import check_no_overwrite, check_output_dir
    flag = "--out" if args.out else f"{exp.source}: output"
    check_output_dir(out, flag)
    check_no_overwrite(out, _outputs(bool(exp.serve), args.interactive), flag, args.force)
    stale = _stale_outputs(out, exp, args)  # read before this run writes report.json
    rep = run_experiment(exp, out_dir=out, accuracy=not args.no_accuracy, interactive=args.interactive,
                         second_process=True)  # the CLI's __main__ is guarded: a spawned child may import it
    if stale:
        from cosim.dse.output_guard import remove_stale
        remove_stale(out, stale, "cosim run (--force)")
    print(format_report(_without_told_shadow_notes(rep, exp), args.top))
    wt = rep.meta.get("weight_tensors") or {}
    if wt:  # which tensors the priced trace stores in which format (latency, energy, memory)
        print("weights as priced (latency, energy, memory): " + ", ".join(f"{g} {f}" for g, f in wt.items()))
    acc = rep.meta.get("accuracy")
    if acc:
        s = acc["sample"]
        worst = min((r for r in rep.rows if r.get("sqnr_db") == r.get("sqnr_db") and "sqnr_db" in r),
                    key=lambda r: r["sqnr_db"], default=None)
        print(f"accuracy: output SQNR per op, pooled over {s['layers']} sampled layer{'s' if s['layers'] != 1 else ''} x <= {s['rows']} rows x "
              f"{s['tokens']} tokens ({acc['provenance'].split(';')[0]})")
        measured = [r for r in rep.rows if "sqnr_db" in r and not str(r.get("accuracy_status", "")).startswith("not ")]
        for r in measured:  # NaN rows are printed with their reason, never dropped
            st = r.get("accuracy_status", "ok")
            print(f"  {r['op']:<14} {r['sqnr_db']:6.2f} dB" + ("" if st == "ok" else f"  [{st}]"))
        nan_rows = [r for r in measured if r["sqnr_db"] != r["sqnr_db"]]
        if nan_rows:
            print(f"  worst: {nan_rows[0]['op']} NaN ({len(nan_rows)} op(s) without a finite SQNR)")
        elif worst:
            print(f"  worst: {worst['op']} {worst['sqnr_db']:.2f} dB")
        ck = acc.get("checkpoint")
        if ck:
            # window: tokens run through the model; tokens: next-token predictions scored (after the prompt part)
            print(f"accuracy on a real checkpoint ({ck['checkpoint']}, {ck['window']} tokens of {ck['text']} run, "
                  f"{ck['tokens']} predictions scored after a {ck['prefill']}-token prompt"
                  + (f"; proxy for {ck['proxy_for']}" if ck.get("proxy_for") else "") + "):")
            print(f"  perplexity {ck['baseline_perplexity']:.4g} -> {ck['perplexity']:.4g} "
                  f"(delta {ck['perplexity_delta']:+.4g}), KL {ck['kl']:.4g} nats/token, "
                  f"top-1 agreement {ck['top1_agreement']:.1%}  [provenance: checkpoint]")
            if ck.get("quantized_tensors"):
                print(f"  quantized: {ck['quantized_tensors']} (weights {ck['weights']}, acts {ck['acts']}, "
                      f"kv {ck['kv']}" + (f", recipe {ck['recipe']}" if ck.get("recipe") else "") + ")")
            print(f"  {ck['baseline_note']}")
            warn = ck.get("warnings") or ck.get("did_not_act") or ()
            for n in warn:  # beside the figure: a recipe that did nothing here, too few predictions
                print(f"  WARNING: {n}")
            for n in ck.get("notes") or ():  # every note of the checkpoint run, never only in report.json
                if n != ck["baseline_note"] and n not in warn:
                    print(f"  note: {n}")
    if rep.meta.get("area_mm2") is not None:
        n = rep.meta.get("area_devices") or 1
        print(f"area: {rep.meta['area_mm2']:.4g} mm2" if n == 1 else
              f"area: {rep.meta['area_mm2']:.4g} mm2 per device x {n} devices = {rep.meta['area_total_mm2']:.4g} mm2")
    sv = rep.meta.get("serve")
    if sv:  # the serving run of the `serve:` block: its TTFT/TPOT/goodput, not only in the files
        print(f"\nserving run ({exp.source}: serve):")
        print(sv["text"])
    extra = ", report_interactive.html" if args.interactive else ""
    print(f"wrote {out / 'report.html'} (+ report.csv, report.json{extra})")
    if sv:
        print(f"wrote {out / 'serve'}/ ({', '.join(sv.get('files', ()))})")
    return 0


def _outputs(serve: bool, interactive: bool) -> list[str]:
    """The files `cosim run` writes into its output directory, by the writers' own lists:
    html_report.report_files, and cosim.serving.output.OUTPUT_FILES under serve/ for an
    experiment with `serve:`."""
    from cosim.html_report import report_files
    from cosim.serving.output import OUTPUT_FILES
    return report_files(interactive) + ([f"serve/{n}" for n in OUTPUT_FILES] if serve else [])


def _stale_outputs(out: Path, exp, args) -> list[str]:
    """With --force over an earlier run (its report.json there): the files this command may write
    (_outputs with every option) that this run will not rewrite; left there they would read as
    this run's. Only those names, never other files. Read before the run, which rewrites the
    report.json that marks the folder as an earlier run's; removed only after the run succeeded."""
    if not args.force or not (out / "report.json").is_file():
        return []
    now = set(_outputs(bool(exp.serve), args.interactive))
    return [n for n in _outputs(True, True) if n not in now and (out / n).is_file()]


def _without_told_shadow_notes(rep, exp):
    """The report as printed: its bare-name notes (cosim.shadow) were printed on stderr as the loaders told
    them, so only a note not told yet stays among the report's printed notes (the files keep every note)."""
    import copy

    from cosim.shadow import experiment_shadow_notes
    shadow, untold = experiment_shadow_notes(exp), experiment_shadow_notes(exp, tell=True)
    shown = copy.copy(rep)
    shown.notes = tuple(n for n in rep.notes if n not in shadow or n in untold)
    return shown
