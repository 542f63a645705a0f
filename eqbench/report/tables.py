"""Paper-style tables from results rows: methods as rows, dataset x scale as columns."""

from __future__ import annotations

from ..metrics import METRICS
from ..scales import Scale


def _scale_label(s) -> str:
    return Scale(float(s[0]), float(s[1])).label()


def pivot(doc: dict, metric: str):
    """DataFrame: index = method, columns = (dataset, scale label), values = mean metric."""
    import pandas as pd

    rows = [r for r in doc["rows"] if r.get("kind", "eval") == "eval" and r["metric"] == metric]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame({"method": [r["method"] for r in rows], "dataset": [r["dataset"] for r in rows],
                       "scale": [_scale_label(r["scale"]) for r in rows],
                       "sort": [(float(r["scale"][0]), float(r["scale"][1])) for r in rows],
                       "value": [r["value"] for r in rows]})
    ds_order = list(dict.fromkeys(df["dataset"]))
    cols = sorted({(d, s, k) for d, s, k in zip(df["dataset"], df["scale"], df["sort"])},
                  key=lambda c: (ds_order.index(c[0]), c[2]))
    table = df.pivot_table(index="method", columns=["dataset", "scale"], values="value", aggfunc="first")
    table = table[[(d, s) for d, s, _ in cols]]
    return table.reindex(list(dict.fromkeys(df["method"])))


def text_table(doc: dict, metrics: tuple[str, ...] = ("psnr-y", "ssim-y")) -> str:
    out = []
    protocol = doc.get("config", {}).get("protocol", "?")
    for metric in metrics:
        t = pivot(doc, metric)
        if t.empty:
            continue
        digits = METRICS[metric].digits
        head = ["method"] + [f"{d} x{s}" for d, s in t.columns]
        body = [[m] + [("-" if v != v else f"{v:.{digits}f}") for v in t.loc[m]] for m in t.index]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        out.append(f"{metric} ({protocol})")
        for r in [head] + body:
            out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        out.append("")
    return "\n".join(out).rstrip()
