#!/usr/bin/env python3
"""Summarises and plots a soak run (bench/soak/run.sh).

usage: report.py SOAK_CSV OUT_PNG BUDGET_MIB RATE

Warm-up is the first 10 % of the run (at least one sample is kept). RSS is
"flat" when, after warm-up, its maximum is within 10 % of its minimum.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    path, png, budget, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    rows = [
        {k: float(v) for k, v in row.items()}
        for row in csv.DictReader(open(path, newline=""))
    ]
    if len(rows) < 2:
        sys.exit("fewer than two samples: nothing to report")
    t = [r["seconds"] for r in rows]
    rss = [r["rss_mib"] for r in rows]
    rates = [0.0] + [
        (b["frames"] - a["frames"]) / max(b["seconds"] - a["seconds"], 1e-9)
        for a, b in zip(rows, rows[1:])
    ]
    warm = max(1, len(rows) // 10)
    after = rss[warm:] or rss[-1:]
    low, high = min(after), max(after)
    flat = high <= low * 1.10
    within = high <= budget
    frames, written, dropped = rows[-1]["frames"], rows[-1]["written"], rows[-1]["dropped"]
    duration = t[-1]
    print(f"duration {duration:.0f} s, target rate {rate}/s, budget {budget:.0f} MiB")
    print(f"frames received {frames:.0f} ({frames / max(duration, 1):.0f}/s), "
          f"records written {written:.0f}, dropped or rejected {dropped:.0f}")
    print(f"RSS after warm-up ({t[warm]:.0f} s on): min {low:.0f} MiB, max {high:.0f} MiB, "
          f"max/min {high / low:.3f} -> {'flat (within 10 %)' if flat else 'NOT flat'}, "
          f"{'within' if within else 'OVER'} the budget")

    fig, left = plt.subplots(figsize=(10, 4.5))
    left.plot(t, rss, color="tab:blue", label="RSS (MiB)")
    left.axhline(budget, color="tab:red", linestyle="--", label=f"budget {budget:.0f} MiB")
    left.set_xlabel("seconds")
    left.set_ylabel("RSS (MiB)")
    left.set_ylim(0, max(budget, high) * 1.1)
    right = left.twinx()
    right.plot(t, rates, color="tab:green", alpha=0.6, label="messages/s")
    right.set_ylabel("messages received per second")
    right.set_ylim(0, max(max(rates), rate) * 1.2)
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    left.set_title("dnsrecall serve soak: unique names over dnstap TCP")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    main()
