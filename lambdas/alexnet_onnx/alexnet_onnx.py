"""The alexnet_onnx function's model: torchvision's ``alexnet`` exported to ONNX, run by ONNX Runtime (swl_infer)."""

from __future__ import annotations

from typing import Any, Mapping

import swl_infer

MODEL = "alexnet"


def classify(event: Mapping[str, Any], cfg: swl_infer.InferenceConfig, s3: Any) -> dict[str, Any]:
    return swl_infer.classify(event, MODEL, cfg, s3)
