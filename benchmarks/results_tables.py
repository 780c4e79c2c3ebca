"""Print the README's and docs/performance.md's tables (Markdown) from a JSON
file written by ``fastbp bench --json FILE``, so that the published figures
are exactly one run's.

    python benchmarks/results_tables.py docs/performance.json
"""

import json
import sys

NAMES = {
    "tiny": "tiny: moons 2-16-1, sgd, batch 32, 50 epochs, f64",
    "digits": "digits: 64-100-10, adam, batch 200, 100 epochs, f64",
    "wide": "wide: 784-256-128-10, adam, batch 128, 3 epochs, f32 (20000 rows)",
}


def _ms(seconds):
    return f"{seconds * 1e3:.1f} ms"


def _x(ratio):
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:.0f}×"


def main_table(res):
    """The head-to-head table: fit times, predict latency, sparse, memory."""
    lines = ["| workload | fastbp | scikit-learn | PyTorch | vs scikit-learn | vs PyTorch "
             "| accuracy (fastbp / sklearn / torch) |",
             "|---|---|---|---|---|---|---|"]
    for key, row in res.get("fit", {}).items():
        f = row["fastbp"]["s"]
        sk = row.get("sklearn", {}).get("s")
        th = row.get("torch", {}).get("s")
        accs = " / ".join(f"{row[lib]['acc']:.3f}" for lib in ("fastbp", "sklearn", "torch")
                          if lib in row)
        lines.append(f"| {NAMES.get(key, row['desc'])} | {_ms(f)} | "
                     f"{_ms(sk) if sk else '–'} | {_ms(th) if th else '–'} | "
                     f"**{_x(sk / f)}** | " + (f"**{_x(th / f)}**" if th else "") + f" | {accs} |")
    for key, row in res.get("modern", {}).items():
        f, th = row["fastbp"]["s"], row.get("torch", {}).get("s")
        accs = " / ".join(f"{row[lib]['acc']:.3f}" if lib in row else "–"
                          for lib in ("fastbp", "sklearn", "torch"))
        lines.append(f"| {key} + GELU, dropout 0.1, AdamW 0.01, cosine schedule | {_ms(f)} | – | "
                     f"{_ms(th) if th else '–'} | | " + (f"**{_x(th / f)}**" if th else "")
                     + f" | {accs} |")
    p = res.get("predict1")
    if p:
        lines.append(f"| predict one sample (64-100-10, public `predict`) | {p['fastbp']:.2f} µs | "
                     + (f"{p['sklearn']:.0f} µs" if "sklearn" in p else "–") + " | "
                     + (f"{p['torch']:.1f} µs" if "torch" in p else "–") + " | "
                     + (f"**{_x(p['sklearn'] / p['fastbp'])}**" if "sklearn" in p else "") + " | "
                     + (f"**{_x(p['torch'] / p['fastbp'])}**" if "torch" in p else "") + " | |")
    s = res.get("sparse")
    if s:
        lines.append("| sparse CSR 20000 × 50000 (0.1% dense), 50000-100-5, adam, batch 200, 2 epochs,"
                     f" f64 | {s['fastbp']['s']:.2f} s | {s['sklearn']['s']:.2f} s | – | "
                     f"**{_x(s['sklearn']['s'] / s['fastbp']['s'])}** | | "
                     f"{s['fastbp']['acc']:.3f} / {s['sklearn']['acc']:.3f} |")
    m = res.get("memory")
    if m:
        cells = [f"+{m[lib]['added_mib']:.1f} MiB" if lib in m else "–"
                 for lib in ("fastbp", "sklearn", "torch")]
        lines.append("| memory added beyond the data, fit + predict on wide | "
                     + " | ".join(cells) + " | | | |")
    return "\n".join(lines)


def sweep_table(res):
    lines = ["| problem | solver | dtype | batch | epochs | fastbp | scikit-learn | PyTorch "
             "| vs sklearn | vs torch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("sweep", []):
        th = r.get("torch")
        lines.append(f"| {r['problem']} | {r['solver']} | {r['dtype'].replace('float', 'f')} | "
                     f"{r['batch']} | {r['epochs']} | {r['fastbp']:.4f} | {r['sklearn']:.4f} | "
                     + (f"{th:.4f}" if th else "–") + f" | {_x(r['sklearn'] / r['fastbp'])} | "
                     + (_x(th / r["fastbp"]) if th else "") + " |")
    return "\n".join(lines)


def peak_line(res):
    w = res.get("fit", {}).get("wide", {}).get("fastbp")
    peak = res.get("limit", {}).get("float32")
    if not w or not peak:
        return ""
    return (f"`wide` runs at {w['gflops']:.0f} GFLOP/s, {100 * w['gflops'] / peak:.0f}% of the "
            f"measured sgemm peak ({peak:.0f} GFLOP/s; dgemm "
            f"{res['limit'].get('float64', 0):.0f} GFLOP/s).")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        res = json.load(fh)
    print(f"machine: {res.get('machine', '?')}\n")
    print(main_table(res), "\n")
    print(peak_line(res), "\n")
    print(sweep_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
