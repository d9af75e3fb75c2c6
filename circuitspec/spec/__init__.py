"""The hypothesis language: schema, YAML files, Python builder, expansion. No torch here.

    from circuitspec.spec import load, expand, make_shape
    h = load("specs/addition.yaml")
    graph = expand(h, make_shape("add", 6, 2, 3))     # networkx.DiGraph of NodeInstance

Its vocabulary (operations, question classes, node site kinds, ``ModelShape``) lives in
``circuitspec.vocabulary``.
"""

from circuitspec.spec.builder import EACH_ANSWER_DIGIT, EACH_DIGIT, HypothesisBuilder, attends, build
from circuitspec.spec.expand import expand
from circuitspec.spec.instance import NodeInstance, can_feed, instances, site_can_feed, span_text
from circuitspec.spec.shape import Applicability, applies_to, default_shape, make_shape, shape_text
from circuitspec.spec.loader import dumps, load, loads
from circuitspec.spec.schema import (
    AppliesTo,
    Attends,
    Bounds,
    CausalTest,
    Checks,
    Edge,
    Hypothesis,
    Impacts,
    Node,
    NodeOverride,
)

__all__ = [
    "Applicability", "AppliesTo", "Attends", "Bounds", "CausalTest", "Checks", "EACH_ANSWER_DIGIT", "EACH_DIGIT",
    "Edge", "Hypothesis", "HypothesisBuilder", "Impacts", "Node", "NodeInstance", "NodeOverride",
    "applies_to", "attends", "build", "can_feed", "default_shape", "dumps",
    "expand", "instances", "load", "loads", "make_shape", "shape_text", "site_can_feed", "span_text",
]
