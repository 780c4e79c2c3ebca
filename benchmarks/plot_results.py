"""Draw the head-to-head chart (PNG) from a JSON file written by
``fastbp bench --json FILE`` (or ``benchmarks/head_to_head.py --json FILE``).

    python benchmarks/plot_results.py results.json docs/performance.png

Left: how many times faster fastbp is than each peer per workload (log
scale), with the issue's targets marked. Right (when the JSON has a sweep):
the same ratio against scikit-learn across the sweep's problem shapes.
"""

import argparse
import json
import sys

TARGETS = {"tiny": 80.0, "digits": 5.0, "wide": 2.5, "predict1": 50.0}
TORCH_TARGETS = {"wide": 2.5, "predict1": 5.0}


def speedups(res):
    """``{peer: [(label, ratio), ...]}`` from the head-to-head results."""
    libs = [lib for lib in res["libs"] if lib != "fastbp"]
    out = {lib: [] for lib in libs}
    for key, row in res.get("fit", {}).items():
        for lib in libs:
            if lib in row:
                out[lib].append((key, row[lib]["s"] / row["fastbp"]["s"]))
    p = res.get("predict1", {})
    for lib in libs:
        if lib in p and "fastbp" in p:
            out[lib].append(("predict1", p[lib] / p["fastbp"]))
    return out


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = res.get("sweep") or []
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 7, 4.5),
                             squeeze=False)
    ax = axes[0][0]
    ups = speedups(res)
    labels = [k for k, _ in next(iter(ups.values()), [])]
    width = 0.8 / max(1, len(ups))
    colors = {"sklearn": "#f28e2b", "torch": "#e15759"}
    for i, (lib, vals) in enumerate(ups.items()):
        xs = [labels.index(k) + (i - (len(ups) - 1) / 2) * width for k, _ in vals]
        bars = ax.bar(xs, [v for _, v in vals], width, label=f"vs {lib}",
                      color=colors.get(lib))
        for bar, (_, v) in zip(bars, vals):
            ax.annotate(f"{v:.1f}x", (bar.get_x() + bar.get_width() / 2, v),
                        ha="center", va="bottom", fontsize=8)
    for j, key in enumerate(labels):
        if key in TARGETS:
            ax.hlines(TARGETS[key], j - 0.45, j + 0.45, colors="black", linestyles="dashed",
                      label="target vs sklearn" if j == 0 else None)
        if key in TORCH_TARGETS and "torch" in ups:
            ax.hlines(TORCH_TARGETS[key], j - 0.45, j + 0.45, colors="grey",
                      linestyles="dotted",
                      label="target vs torch" if key == "wide" else None)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yscale("log")
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_ylabel("times faster than the peer (fit / predict)")
    ax.set_title("fastbp head-to-head")
    ax.legend(fontsize=8)
    if sweep:
        ax2 = axes[0][1]
        names = [f"{r['problem'].split()[0]} {r['solver']} f{r['dtype'][-2:]} b{r['batch']}"
                 for r in sweep]
        ratios = [r["sklearn"] / r["fastbp"] for r in sweep if "sklearn" in r]
        ax2.barh(range(len(ratios)), ratios, color="#4e79a7")
        ax2.set_yticks(range(len(ratios)), names[:len(ratios)], fontsize=7)
        ax2.set_xscale("log")
        ax2.axvline(1, color="black", linewidth=0.8)
        ax2.invert_yaxis()
        ax2.set_xlabel("times faster than scikit-learn")
        ax2.set_title("sweep of problem shapes")
    fig.suptitle(res.get("machine", ""), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="JSON written by fastbp bench --json")
    p.add_argument("output", help="PNG file to write")
    args = p.parse_args(argv)
    with open(args.results) as fh:
        res = json.load(fh)
    plot(res, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
