"""Verification: metrics, verdicts and orchestration over models."""

from circuitspec.verify.verdict import (
    PlacementEvidence,
    CircuitMetrics,
    Estimate,
    ModelLayout,
    NodeVerdict,
    Report,
    Verdict,
    VariableTest,
)

__all__ = ["PlacementEvidence", "CircuitMetrics", "Estimate", "ModelLayout", "NodeVerdict", "Report", "Verdict", "VariableTest", "verify"]


def __getattr__(name: str):
    if name == "verify":
        from circuitspec.verify.core import verify

        return verify
    raise AttributeError(name)
