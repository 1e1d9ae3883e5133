"""Cost against load: the cheapest deployment meeting every SLO at each multiple of the demand
(the assessment's ``load_table``, checked by ``card_inputs``), as $ per month. It shows what a
table of one study cannot: how the bill steps up as traffic grows, and where the search space
runs out (loads no deployment serves are marked on the axis, never given a cost). Between two
measured loads the line steps up at the lower one: a deployment that serves the higher load
serves any load below it, so the line is an upper bound where nothing was measured."""

from __future__ import annotations

from pathlib import Path

from hermes_opt.report.card import HOURS_PER_MONTH

TITLE = "Cost against load: the cheapest deployment meeting every SLO"
X_LABEL = "load (multiple of the demand)"
Y_LABEL = f"cost ($ per month = $/hour x {HOURS_PER_MONTH})"
SERVED, UNSERVED = "#1f77b4", "#d62728"


def _split(table: list[dict]) -> tuple[list[dict], list[dict]]:
    served = [r for r in table if r["usd_per_hour"] is not None]
    return served, [r for r in table if r["usd_per_hour"] is None]


def load_figure(table: list[dict], demand_rate_per_s: float | None = None):
    """The plotly figure of ``table`` (rows sorted by multiple)."""
    import plotly.graph_objects as go
    served, unserved = _split(table)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[r["multiple"] for r in served],
        y=[r["usd_per_hour"] * HOURS_PER_MONTH for r in served], mode="lines+markers+text",
        line={"shape": "vh", "color": SERVED}, name="cheapest deployment meeting the SLOs",
        text=[r["deployment"] for r in served], textposition="middle right", cliponaxis=False,
        hovertext=[_hover(r, demand_rate_per_s) for r in served], hoverinfo="text"))
    if unserved:
        fig.add_trace(go.Scatter(
            x=[r["multiple"] for r in unserved], y=[0] * len(unserved), mode="markers",
            marker={"symbol": "x", "size": 12, "color": UNSERVED}, cliponaxis=False,
            name="no deployment in the search space meets the SLOs",
            hovertext=[_hover(r, demand_rate_per_s) for r in unserved], hoverinfo="text"))
    demand = f" of {demand_rate_per_s:g} requests/s" if demand_rate_per_s else ""
    fig.update_layout(title=TITLE, xaxis_title=X_LABEL.replace("demand", f"demand{demand}"),
                      yaxis_title=Y_LABEL, template="plotly_white", height=420)
    fig.update_xaxes(tickformat=",.6~r", exponentformat="none")
    fig.update_yaxes(tickformat="$,.0f", exponentformat="none", rangemode="tozero")
    return fig


def _hover(row: dict, demand_rate_per_s: float | None) -> str:
    rate = f" = {row['multiple'] * demand_rate_per_s:g} requests/s" if demand_rate_per_s else ""
    trial = f", trial {row['trial']}" if row.get("trial") is not None else ""
    if row["usd_per_hour"] is None:
        return f"{row['multiple']:g}x demand{rate}: no deployment meets the SLOs"
    return (f"{row['multiple']:g}x demand{rate}: {row['deployment']}{trial}, "
            f"${row['usd_per_hour']:,.2f}/hour = ${row['usd_per_hour'] * HOURS_PER_MONTH:,.0f}"
            f"/month")


def load_png(table: list[dict], path: Path, demand_rate_per_s: float | None = None) -> None:
    """The same chart with matplotlib (Agg): ``load.png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    served, unserved = _split(table)
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    xs = [r["multiple"] for r in served]
    ys = [r["usd_per_hour"] * HOURS_PER_MONTH for r in served]
    ax.step(xs, ys, where="pre", color=SERVED, label="cheapest deployment meeting the SLOs")
    ax.scatter(xs, ys, color=SERVED, zorder=3)
    for x, y, row in zip(xs, ys, served, strict=True):
        ax.annotate(row["deployment"], (x, y), textcoords="offset points", xytext=(6, -3),
                    fontsize=8)
    if unserved:
        ax.scatter([r["multiple"] for r in unserved], [0] * len(unserved), marker="x", s=60,
                   color=UNSERVED, zorder=3,
                   label="no deployment in the search space meets the SLOs")
    demand = f" of {demand_rate_per_s:g} requests/s" if demand_rate_per_s else ""
    ax.set_xlabel(X_LABEL.replace("demand", f"demand{demand}"))
    ax.set_ylabel(Y_LABEL.replace("$", r"\$"))  # a "$...$" pair is mathtext to matplotlib
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.0f}"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}x"))
    ax.set_title(TITLE, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
              frameon=False)  # below the axes: the labels of the points stay readable
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
