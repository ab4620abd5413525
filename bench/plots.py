"""PNG figures for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from bench.common import percentile

__all__ = ["client_figures", "gateway_figure", "import_figure"]

_OURS = ("codelinkava", "codelinkava_openai")
_COLORS = {"raw": "#bbbbbb", "floor": "#777777", "seed": "#a0522d", "codelinkava": "#1f77b4",
           "codelinkava_openai": "#4fa3e0", "openai": "#2ca02c", "litellm": "#d62728",
           "g4f": "#9467bd", "direct": "#bbbbbb", "relay": "#777777"}


def _bars(ax: Any, data: dict[str, Any], stats: dict[str, dict[str, float]], key: str,
          title: str, xlabel: str) -> None:
    names = list(stats)
    mids = [stats[n][key] for n in names]
    lo = [stats[n][key] - stats[n][key + "_min"] for n in names]
    hi = [stats[n][key + "_max"] - stats[n][key] for n in names]
    y = range(len(names))
    ax.barh(y, mids, xerr=[lo, hi], color=[_COLORS.get(n, "#444") for n in names], capsize=3)
    ax.set_yticks(list(y), [data["labels"][n]["label"] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    for i, name in enumerate(names):  # the median, written past the error bar
        ax.annotate(f"{stats[name][key]:,.3g}", (stats[name][key + "_max"], i), xytext=(5, -3),
                    textcoords="offset points", fontsize=7)
    if "floor" in stats and key == "cpu":
        ax.axvline(stats["floor"]["cpu"], color="#777777", ls=":", lw=1)
        ax.axvline(stats["floor"]["cpu"] * 1.5, color="#1f77b4", ls="--", lw=1)


def client_figures(data: dict[str, Any], fast: dict[str, dict[str, float]],
                   paced: dict[str, dict[str, float]], out: Path) -> list[tuple[str, str]]:
    figures = []
    if fast:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
        _bars(axes[0], data, fast, "cpu", f"fast: {data['settings']['n']:,} chunks as fast as "
              "possible (dotted: floor, dashed: 1.5× floor)", "CPU µs per chunk (log)")
        if paced:
            _bars(axes[1], data, paced, "cpu", "paced: one chunk per read",
                  "CPU µs per chunk (log)")
        fig.savefig(out / "client_cpu_per_chunk.png", dpi=110)
        plt.close(fig)
        figures.append(("client_cpu_per_chunk.png", "CPU µs per chunk"))

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
        _bars(axes[0], data, fast, "rate", "fast: chunks per second (one stream)", "chunks/s (log)")
        _bars(axes[1], data, fast, "ttfc", "fast: time to first chunk", "ms (log)")
        fig.savefig(out / "client_throughput_first_chunk.png", dpi=110)
        plt.close(fig)
        figures.append(("client_throughput_first_chunk.png", "chunks/s and first chunk"))

    conc = data.get("concurrency") or {}
    if conc:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
        for name, levels in conc.items():
            pts = sorted((int(c), a) for c, a in levels.items() if a.get("ttfc_s"))
            if not pts:
                continue
            xs = [c for c, _ in pts]
            style = {"color": _COLORS.get(name, "#444"), "marker": "o",
                     "lw": 2.5 if name in _OURS else 1.2, "label": data["labels"][name]["label"]}
            axes[0].plot(xs, [a["chunks_per_s"] for _, a in pts], **style)
            axes[1].plot(xs, [percentile(a["ttfc_s"], 50) * 1e3 for _, a in pts], **style)
            axes[1].plot(xs, [percentile(a["ttfc_s"], 99) * 1e3 for _, a in pts],
                         color=style["color"], ls=":", marker="x")
            axes[2].plot(xs, [max(1, (a["peak_rss_kib"] - a["baseline_rss_kib"]) / a["c"])
                              for _, a in pts], **style)
        titles = ("total chunks/s", "first chunk ms (solid p50, dotted p99)",
                  "peak RSS per stream, KiB")
        for ax, title in zip(axes, titles, strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("simultaneous streams")
            ax.set_title(title, fontsize=10)
        axes[0].legend(fontsize=7)
        fig.savefig(out / "client_concurrency.png", dpi=110)
        plt.close(fig)
        figures.append(("client_concurrency.png", "concurrency"))
    return figures


def import_figure(rows: list[dict[str, Any]], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.5), constrained_layout=True)
    names = [r["label"] for r in rows]
    values = [r["wall_ms"] for r in rows]
    ax.barh(range(len(rows)), values,
            color=["#1f77b4" if r["label"].startswith("codelinkava") else "#999999" for r in rows])
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(100, color="#1f77b4", ls="--", lw=1)
    ax.set_xlabel("ms, median (fresh interpreter, minus an empty one); dashed: 100 ms target")
    for i, v in enumerate(values):
        ax.annotate(f"{v:,.0f}", (v, i), xytext=(4, -3), textcoords="offset points", fontsize=7)
    fig.savefig(out / "import_time.png", dpi=110)
    plt.close(fig)
    return "import_time.png"


def gateway_figure(data: dict[str, Any], st: dict[str, dict[str, dict[str, Any]]],
                   out: Path) -> str | None:
    """Per mode (rows): first chunk p50, chunks/s against direct, gateway CPU per chunk."""
    if not st:
        return None
    modes = [m for m in ("paced", "fast") if any(c["mode"] == m for c in data["cells"])]
    fig, axes = plt.subplots(len(modes), 3, figsize=(15, 4.2 * len(modes)),
                             constrained_layout=True, squeeze=False)
    for row, mode in zip(axes, modes, strict=True):
        cells = [c for c in data["cells"] if c["mode"] == mode]
        for name, label in data["labels"].items():
            pts = [(c["c"], st[f"{mode}/{c['c']}"].get(name)) for c in cells]
            pts = [(c, f) for c, f in pts if f]
            if not pts:
                continue
            xs = [c for c, _ in pts]
            style = {"color": _COLORS.get(name, "#444"), "marker": "o", "label": label,
                     "lw": 2.5 if name == "codelinkava" else 1.2}
            row[0].plot(xs, [f["ttfc_p50"] for _, f in pts], **style)
            row[1].plot(xs, [f["rate_ratio"] or float("nan") for _, f in pts], **style)
            if name != "direct":
                row[2].plot(xs, [f["cpu_us"] or float("nan") for _, f in pts], **style)
        row[1].axhline(0.95, color="#1f77b4", ls="--", lw=1)
        row[2].axhline(20, color="#1f77b4", ls="--", lw=1)
        titles = (f"{mode}: first chunk p50, ms", f"{mode}: chunks/s ÷ direct (dashed: 0.95)",
                  f"{mode}: gateway CPU µs per relayed chunk (dashed: 20)")
        for ax, title in zip(row, titles, strict=True):
            ax.set_xscale("log")
            ax.set_xlabel("simultaneous streams")
            ax.set_title(title, fontsize=10)
        row[0].set_yscale("log")
        row[2].set_yscale("log")
        row[0].legend(fontsize=7)
    fig.savefig(out / "gateway.png", dpi=110)
    plt.close(fig)
    return "gateway.png"
