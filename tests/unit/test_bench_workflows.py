"""The pure parts of scripts/bench-workflows: medians of warm requests and the figure lines."""

from __future__ import annotations

import pytest

from swlab.bench.workflows import Figures, warm_p50_ms
from swlab.run.smoke import Answer

pytestmark = pytest.mark.unit


def test_warm_p50_is_the_median_of_the_requests_sent():
    times = iter([30.0, 10.0, 20.0, 50.0, 40.0])
    sent = []

    def send(i):
        sent.append(i)
        return Answer(200, {"status": "SUCCEEDED"}, next(times))

    assert warm_p50_ms(send, 5) == 30.0 and sent == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(504, {"message": "Endpoint request timed out"}, 29_000.0),
        Answer(200, {"status": "FAILED", "error": "X"}, 100.0),
    ],
)
def test_a_failed_warm_request_is_an_error_not_a_figure(answer):
    with pytest.raises(RuntimeError, match="warm request 0 failed"):
        warm_p50_ms(lambda i: answer, 3)


def test_figures_print_as_name_value_lines_in_order():
    figures = Figures()
    figures.add("wf1_cold_ms", 558.4321)
    figures.add("wf2_cold_status", 504)
    assert figures.lines() == ["wf1_cold_ms: 558.4", "wf2_cold_status: 504"]


def test_variants_parse_and_default_to_torch_onnx_and_fused_onnx():
    from swlab.bench.workflows import VARIANTS, parse_variant

    assert parse_variant("fused:onnx") == {"preprocessing": "fused", "inference": "onnx"}
    assert [parse_variant(v) for v in VARIANTS][1:] == [
        {"preprocessing": "steps", "inference": "onnx"},
        {"preprocessing": "fused", "inference": "onnx"},
    ]
    with pytest.raises(Exception, match="expected PREPROCESSING:INFERENCE"):
        parse_variant("onnx")


def test_each_variant_measured_prints_its_own_block(monkeypatch, capsys):
    from swlab.bench import workflows

    seen = []

    def fake_run(n_warm, work_dir, progress, cpu_models, **variant):
        seen.append((variant, cpu_models))
        figures = Figures()
        suffix = "".join(
            f"_{v}" for v in (variant["preprocessing"], variant["inference"]) if v not in ("steps", "torch")
        )
        figures.add(f"wf2_cold_ms{suffix}", 1000.0)
        return figures

    monkeypatch.setattr(workflows, "run", fake_run)
    assert workflows.main(["--warm", "1", "--cpu-model", "aws"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [v for v, _ in seen] == [workflows.parse_variant(v) for v in workflows.VARIANTS]
    assert (
        "variant: fused:onnx" in out and "wf2_cold_ms_fused_onnx: 1000.0" in out and "wf2_cold_ms_onnx: 1000.0" in out
    )
    seen.clear()
    workflows.main(["--inference", "onnx"])
    assert seen == [({"preprocessing": "steps", "inference": "onnx"}, ("aws", "off"))]


def test_init_cpu_goes_to_every_local_cloud_and_is_printed(monkeypatch, capsys):
    from swlab.bench import workflows

    seen = []
    monkeypatch.setattr(workflows, "run", lambda *a, **kw: seen.append(kw) or Figures())
    assert workflows.main(["--variant", "steps:onnx", "--cpu-model", "aws", "--init-cpu", "memory"]) == 0
    assert seen[0]["cloud_options"] == {"init_cpu": "memory"}
    assert "init_cpu: memory" in capsys.readouterr().out.splitlines()
    seen.clear()
    workflows.main(["--variant", "steps:onnx"])
    assert "cloud_options" not in seen[0]  # the local cloud's default (boost)
