"""Print the Markdown tables of the tabular benchmark (for docs/tabular.md and
the README) from one results file written by ``fastbp bench --tabular --json
FILE`` (or ``benchmarks/tabular.py``), and draw the chart: mean score against
total fit time (log scale), one point per model, then one small panel per table.

    python benchmarks/tabular_tables.py results.json [--png docs/tabular.png | --no-png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fastbp import _bench_tabular as harness  # the benchmark's harness

HERE = Path(__file__).resolve().parent


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    return f"{s:.2f} s" if s < 10 else f"{s:.0f} s"


def _order(names, preferred):
    return [n for n in preferred if n in names] + sorted(set(names) - set(preferred))


def models_of(res) -> list[str]:
    return _order({r["model"] for r in res["results"] if "error" not in r}, list(harness.MODELS))


def tables_of(res) -> list[str]:
    return _order({r["table"] for r in res["results"] if "error" not in r}, list(harness.TABLES))


def common_tables(res) -> list[str]:
    """The tables every model finished (where mean scores compare like for like)."""
    rows = harness.per_table(res)
    models = models_of(res)
    return [t for t in tables_of(res) if all((t, m) in rows for m in models)]


def seeds_of(res) -> dict:
    """``{model: sorted seeds}`` of its successful results."""
    out: dict = {}
    for r in res["results"]:
        if "error" not in r:
            out.setdefault(r["model"], set()).add(r["seed"])
    return {m: sorted(s) for m, s in out.items()}


def common_seeds(res) -> list[int]:
    """The seeds every model ran (where seed-to-seed noise compares like for like)."""
    per_model = list(seeds_of(res).values())
    return sorted(set.intersection(*map(set, per_model))) if per_model else []


def on_seeds(res, seeds) -> dict:
    """``res`` with the results of ``seeds`` only."""
    return {**res, "results": [r for r in res["results"] if r["seed"] in set(seeds)]}


def header(res) -> str:
    sessions = res.get("sessions", [])
    if not sessions:
        return "no session recorded"
    first, last = sessions[0], sessions[-1]
    m = first["machine"]
    load = m.get("load_average_start")
    text = (f"{m['cpu']}, {m['cores']} cores, {m.get('avx512f_cpus')} with avx512f, load at "
            f"start {load[0]:.2f}" if load else f"{m['cpu']}, {m['cores']} cores")
    text += f"; {first['start']} to {last.get('end') or 'unfinished'}"
    text += "; " + ", ".join(f"{k} {v}" for k, v in first.get("versions", {}).items())
    if len(sessions) > 1:
        text += (f"\n\n**{len(sessions)} sessions (an interrupted or extended run): "
                 "not for publication.**")
    return text


def summary_table(res, tables=None) -> str:
    """Mean score and total times per model, best mean score first."""
    summary = harness.aggregate(res, tables)
    seeds = seeds_of(res)
    lines = ["| model | tables | seeds | mean score | mean accuracy | mean R² | total fit time "
             "| total predict time |", "|---|---|---|---|---|---|---|---|"]
    for model, row in sorted(summary.items(), key=lambda kv: -kv[1]["mean_score"]):
        acc = f"{row['mean_accuracy']:.4f}" if row["mean_accuracy"] is not None else "–"
        r2 = f"{row['mean_r2']:.4f}" if row["mean_r2"] is not None else "–"
        lines.append(f"| {model} | {len(row['tables'])} | {len(seeds[model])} "
                     f"| **{row['mean_score']:.4f}** | {acc} "
                     f"| {r2} | {_seconds(row['total_fit_s'])} "
                     f"| {_seconds(row['total_predict_s'])} |")
    return "\n".join(lines)


def _grid(res, cell) -> str:
    """Tables down, models across; ``cell(row)`` formats one (table, model)."""
    rows = harness.per_table(res)
    models = models_of(res)
    lines = ["| table | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for table in tables_of(res):
        cells = [cell(rows[(table, m)]) if (table, m) in rows else "–" for m in models]
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def score_table(res) -> str:
    """Accuracy or R² per table (mean ± sd over the seeds)."""
    def cell(row):
        text = f"{row['score']:.4f}"
        return text + (f" ± {row['score_sd']:.4f}" if row["n_seeds"] > 1 else "")
    return _grid(res, cell)


def secondary_table(res) -> str:
    """Log-loss (classification) or RMSE (regression) per table."""
    return _grid(res, lambda row: f"{row['log_loss']:.4f}" if "log_loss" in row
                 else f"{row.get('rmse', float('nan')):.4g}")


def fit_time_table(res) -> str:
    """Mean fit time per table."""
    return _grid(res, lambda row: _seconds(row["fit_s"]))


def dataset_table(res) -> str:
    lines = ["| table | task | rows | features | numeric | bool | categorical (max levels) "
             "| missing cells |", "|---|---|---|---|---|---|---|---|"]
    for name in _order(set(res.get("tables", {})), list(harness.TABLES)):
        t = res["tables"][name]
        task = t["task"] if t["task"] != "classification" else f"classification ({t['classes']})"
        lines.append(f"| {name} | {task} | {t['rows']} | {t['features']} | {t['numeric']} | "
                     f"{t['bool']} | {t['categorical']} ({t['max_categories']}) | "
                     f"{t['missing_cells']} |")
    return "\n".join(lines)


def plot(res, path) -> None:
    """Mean score vs total fit time (log x) per model, then a panel per table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    summary = harness.aggregate(res, common_tables(res) or None)
    rows = harness.per_table(res)
    tables = tables_of(res)
    n_cols = 4
    n_rows = 1 + -(-len(tables) // n_cols)
    fig = plt.figure(figsize=(3.2 * n_cols, 3.4 + 2.6 * (n_rows - 1)))
    grid = fig.add_gridspec(n_rows, n_cols, height_ratios=[1.4] + [1] * (n_rows - 1))
    colors = {m: f"C{i}" for i, m in enumerate(models_of(res))}
    ax = fig.add_subplot(grid[0, :])
    for model, row in summary.items():
        ax.scatter(row["total_fit_s"], row["mean_score"], color=colors[model], s=50)
        ax.annotate(model, (row["total_fit_s"], row["mean_score"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=9)
    ax.set_xscale("log")
    ax.margins(x=0.12)  # room for the labels of the extreme points
    ax.set_xlabel("total fit time over the tables (s, log scale)")
    ax.set_ylabel("mean score (accuracy / R²)")
    n_tables = len(next(iter(summary.values()))["tables"]) if summary else 0
    ax.set_title(f"mean over the {n_tables} tables every model ran", fontsize=10)
    for k, table in enumerate(tables):
        sub = fig.add_subplot(grid[1 + k // n_cols, k % n_cols])
        for model in colors:
            if (table, model) in rows:
                sub.scatter(rows[(table, model)]["fit_s"], rows[(table, model)]["score"],
                            color=colors[model], s=25, label=model)
        sub.set_xscale("log")
        sub.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        sub.set_title(f"{table} (fit s / score)", fontsize=9)
        sub.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=m)
               for m, c in colors.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(res) -> str:
    """Every table, as Markdown."""
    parts = [f"machine: {header(res)}", "### Summary", summary_table(res)]
    common = common_tables(res)
    if len(common) < len(tables_of(res)):
        parts += [f"### Summary on the {len(common)} tables every model ran: "
                  + ", ".join(common), summary_table(res, common)]
    shared = common_seeds(res)
    if any(len(s) > len(shared) for s in seeds_of(res).values()):
        parts += [f"### Summary on the seeds every model ran: {', '.join(map(str, shared))}",
                  summary_table(on_seeds(res, shared), common or None)]
    parts += ["### Accuracy (classification) / R² (regression), mean ± sd over seeds",
              score_table(res), "### Log-loss / RMSE", secondary_table(res),
              "### Fit time (mean over seeds)", fit_time_table(res),
              "### Tables", dataset_table(res)]
    skipped = res.get("skipped", {})
    if skipped:
        parts.append("Skipped: " + "; ".join(f"{m} ({why})" for m, why in skipped.items()))
    failed = [r for r in res["results"] if "error" in r]
    if failed:
        parts.append("Failed: " + "; ".join(f"{r['table']}/{r['model']}/seed {r['seed']}: "
                                            f"{r['error']}" for r in failed))
    return "\n\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/tabular_tables.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="JSON file written by benchmarks/tabular.py --json")
    p.add_argument("--png", default=str(HERE.parent / "docs" / "tabular.png"),
                   help="chart to write (default docs/tabular.png)")
    p.add_argument("--no-png", action="store_true", help="print the tables only")
    args = p.parse_args(argv)
    with open(args.results) as fh:
        res = json.load(fh)
    print(report(res))
    if not args.no_png:
        plot(res, args.png)
        print(f"\nchart: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
