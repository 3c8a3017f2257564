"""Each plot returns a Figure with the expected axes, on fixture logs and a small synthetic run."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from swlab.analysis import cost, plots, prices, stats, workflow  # noqa: E402
from swlab.analysis.histories import executions_frame, history_to_states  # noqa: E402
from swlab.analysis.logs import parse_log_events  # noqa: E402
from swlab.bench.synthetic import synthetic_run  # noqa: E402

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


@pytest.fixture(scope="module")
def run():
    return synthetic_run(n_ingest=12, n_classify=5)


def labels(fig: Figure, i: int = -1) -> tuple[str, str]:
    ax = fig.axes[i]
    return ax.get_xlabel(), ax.get_ylabel()


def test_cold_start_timeline_on_fixture_logs():
    inv = parse_log_events(json.loads((FIXTURES / "text_format.json").read_text())["events"])
    fig = plots.cold_start_timeline(inv)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert labels(fig) == ("invocation start (UTC)", "ms")
    assert fig.axes[0].get_title(loc="left").endswith("1 cold of 2")  # swlab-flip


def test_cold_start_cost_plot_stacks_init_and_extra_duration():
    inv = parse_log_events(json.loads((FIXTURES / "text_format.json").read_text())["events"])
    cost_ms = stats.cold_start_cost(inv)
    fig = plots.cold_start_cost_plot(cost_ms)
    ax = fig.axes[0]
    assert labels(fig) == ("ms (medians)", "")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Init Duration",
        "extra Duration of the first invocation",
    ]
    init_bar, extra_bar = ax.patches[0], ax.patches[len(cost_ms)]
    assert init_bar.get_width() == cost_ms["init_ms"].iloc[0]
    assert extra_bar.get_x() == init_bar.get_width()  # the extra part starts where Init ends


def test_latency_plots(run):
    client = stats.client_latency(run["jtl"])
    server = stats.server_latency(run["executions"])
    fig = plots.latency_cdf({"client": client["latency_ms"], "server": server["latency_ms"]})
    assert labels(fig) == ("latency (ms)", "fraction of requests ≤ latency")
    assert len(fig.axes[0].get_lines()) == 2
    assert labels(plots.latency_percentiles({"client": client["latency_ms"]})) == ("percentile", "latency (ms)")
    assert labels(plots.latency_over_time(client)) == ("request start (UTC)", "latency (ms)")


def test_latency_over_time_breaks_the_median_line_at_a_quiet_gap():
    start = pd.Timestamp("2026-11-27T05:00:00Z")
    times = [start + pd.Timedelta(seconds=s) for s in (0, 1, 2, 300, 301, 302, 303)]
    latency = pd.DataFrame(
        {"time": times, "latency_ms": [10.0, 12, 11, 20, 21, 22, 23], "success": True, "label": "classify"}
    )
    ax = plots.latency_over_time(latency, window="10s").axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2  # one segment before the 5-minute gap, one after
    assert [len(line.get_xdata()) for line in lines] == [3, 4]
    assert lines[0].get_color() == lines[1].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()].count("classify rolling median (10s)") == 1


def test_throughput_plot(run):
    inv = run["invocations"]
    tp = stats.throughput(inv["start_time"], inv["end_time"], inv.loc[inv["status"] != "success", "end_time"])
    assert labels(plots.throughput_plot(tp)) == ("time (UTC)", "per second")


def test_workflow_plots(run):
    joined = workflow.attach_lambda_durations(run["states"], run["invocations"])
    fig = plots.gantt(joined, run["executions"], n=3)
    assert len(fig.axes) == 3 and labels(fig) == ("time since execution start (s)", "state")
    mcp = workflow.median_critical_path(joined, run["executions"])
    assert labels(plots.critical_path_plot(mcp)) == ("median time (ms)", "state on the critical path")


def test_errors_and_cost_plots(run):
    assert labels(plots.errors_plot(stats.errors_table(run["invocations"]))) == ("function", "count")
    empty = pd.DataFrame(columns=["function", "error_type", "count"])
    assert labels(plots.errors_plot(empty)) == ("function", "count")
    costs = cost.cost_table(cost.usage_lines(run.tables, "swlab"), prices.load_prices())
    fig = plots.cost_breakdown_plot(costs)
    assert labels(fig) == ("USD per 1,000,000 runs", "workflow")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "classify\n(SFN standard)" in ticks and "classify\n(SFN express)" in ticks and "ingest" in ticks


def test_plots_of_an_empty_run_say_no_data(recwarn):

    inv = parse_log_events([])
    ex = executions_frame([])
    states = history_to_states([], "").assign(state_machine=pd.Series(dtype=str))
    figs = [
        plots.cold_start_timeline(inv),
        plots.cold_start_cost_plot(stats.cold_start_cost(inv)),
        plots.latency_cdf({"a": pd.Series([], dtype=float)}),
        plots.latency_over_time(stats.server_latency(ex)),
        plots.throughput_plot(stats.throughput([], [])),
        plots.gantt(workflow.attach_lambda_durations(states, inv), ex),
        plots.critical_path_plot(workflow.median_critical_path(states, ex)),
        plots.errors_plot(stats.errors_table(inv)),
        plots.cost_breakdown_plot(
            cost.cost_table(cost.usage_lines({"invocations": inv}, "swlab"), prices.load_prices())
        ),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert not [w for w in recwarn if "legend" in str(w.message)]
