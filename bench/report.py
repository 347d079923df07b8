"""`results.md`: one `keras-ar bench` run as a readable reference.

A header with the machine (CPU model, ISA flags and cores from `bench.common.cpu_info`), the
date, the exact command and the plots written beside it; then one section per benchmark, in
the order run, with its run time and a table of its rows. Learning-curve rows (`series`)
are folded into one line per case (`step: value` pairs) under their own table.
"""


def _value(value):
    """Readable numbers: thousands separated from 10,000 up, else 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _cell(text):
    return str(text).replace("|", "\\|")


def _table(rows):
    lines = ["| case | metric | value | unit |", "|---|---|---|---|"]
    lines += [f"| {_cell(r['case'])} | {_cell(r['metric'])} | {_value(r['value'])} | "
              f"{_cell(r['unit'])} |" for r in rows]
    return lines


def _series_table(rows):
    """One line per (case, metric): its points as `step: value`, in step order."""
    points = {}
    for r in rows:
        points.setdefault((r["case"], r["metric"], r["unit"]), []).append(
            (r.get("step", 0), r["value"]))
    lines = ["| case | metric | step: value | unit |", "|---|---|---|---|"]
    for (case, metric, unit), pairs in points.items():
        listed = ", ".join(f"{step:g}: {value:.4g}" for step, value in sorted(pairs))
        lines.append(f"| {_cell(case)} | {_cell(metric)} | {listed} | {_cell(unit)} |")
    return lines


def markdown_report(rows, meta, descriptions=None, plots=()):
    """The results page for `rows` of one run. `meta`: time, cpu, machine, command, quick,
    benchmarks (names in run order), seconds and cpu_seconds ({name: wall / process CPU
    seconds}); `descriptions`: name -> what it measures; `plots`: file names written beside
    the page."""
    descriptions = descriptions or {}
    lines = ["# Benchmark results", "",
             f"- machine: {meta['cpu']} ({meta.get('machine', '?')})",
             f"- date: {meta['time']}",
             f"- command: `{meta['command']}`"
             + (" (quick: small sizes)" if meta.get("quick") else " (full sizes)")]
    if plots:
        lines.append("- plots: " + ", ".join(f"[{name}]({name})" for name in plots))
    for name in meta["benchmarks"]:
        mine = [r for r in rows if r["benchmark"] == name]
        lines += ["", f"## {name}", ""]
        if name in descriptions:
            lines.append(f"{descriptions[name]}.")
        seconds = meta.get("seconds", {}).get(name)
        if seconds is not None:
            cpu = meta.get("cpu_seconds", {}).get(name)
            lines.append(f"Run time: {seconds:.0f} s" + (f" ({cpu:.0f} s of process CPU)."
                                                          if cpu is not None else "."))
        lines.append("")
        lines += _table([r for r in mine if "series" not in r])
        series = [r for r in mine if "series" in r]
        if series:
            lines += ["", "Learning curves (the points of `image_learning_curves.png`):", ""]
            lines += _series_table(series)
    return "\n".join(lines) + "\n"
