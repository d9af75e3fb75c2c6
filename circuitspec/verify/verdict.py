"""Verdicts: what circuitspec concluded about a hypothesis in a model, with evidence.

Everything here is plain data (pydantic) so that a verdict serialises to stable JSON,
re-renders without a model, and compares byte for byte across runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from circuitspec.errors import UnknownNodeError, unknown

NodeStatus = Literal["confirmed", "unconfirmed", "not_placed"]
HypothesisStatus = Literal["holds", "fails", "inconclusive", "not_applicable"]
UnplacedReason = Literal["no_candidate", "failed_causal_test", "edge_conflict"]
EdgeStatus = Literal["confirmed", "unconfirmed", "failed", "untested"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(_Frozen):
    """A measured proportion or score with its 95% confidence interval."""

    value: float
    low: float
    high: float
    n: int = Field(description="number of questions (or pairs) behind the estimate")
    method: str = Field(description="how the interval was computed, e.g. 'wilson', 'bootstrap'")


class VariableTest(_Frozen):
    """Interchange test of one variable of a node on its placement."""

    variable: str = Field(description="variable instance, e.g. 'SA(3)'")
    accuracy: Estimate = Field(description="share of pairs whose patched answer equals the causal model's prediction")
    changed: Estimate = Field(description="share of pairs whose patched answer differs from the base answer")
    pairs: int
    example: str | None = Field(default=None, description="one failing pair in the paper's notation, if any")
    failing_digits: dict[str, int] = Field(default={}, description="served answer token -> failing pairs whose patched answer is wrong there")
    failing_classes: dict[str, int] = Field(default={}, description="question class (of the base question) -> failing pairs")


class PlacementEvidence(_Frozen):
    """A placement tried for a node (``match.placement.Placement`` as data): its sites and causal score."""

    sites: list[str]
    score: float
    tests: list[VariableTest] = []
    passed: bool


class NodeVerdict(_Frozen):
    node: str
    variables: list[str]
    required: bool
    status: NodeStatus
    sites: list[str] = Field(default=[], description="the chosen placement, e.g. ['P16.L0.H1', 'P16.L0.H2']")
    tests: list[VariableTest] = []
    runner_up: PlacementEvidence | None = Field(
        default=None,
        description="placed node: the best other placement; unplaced node: the best placement tried",
    )
    reason: UnplacedReason | None = None
    detail: str = Field(default="", description="why the node is unconfirmed or not placed, in words")
    candidates_considered: int = 0


class ResampleMetrics(_Frozen):
    """Faithfulness and completeness with resample instead of mean ablation: each ablated site takes
    its value from another question of the same class (one within-class shuffle of the questions)."""

    faithfulness: Estimate
    completeness: Estimate


class EdgeVerdict(_Frozen):
    """The path-patching test of one edge (``match.edges``) on its nodes' chosen sites."""

    source: str
    target: str
    required: bool
    status: EdgeStatus = Field(description="confirmed / unconfirmed (too little evidence) / failed / untested (an endpoint not placed)")
    accuracy: Estimate | None = Field(default=None, description="the weakest source variable's share of informative pairs answered as the path-specific prediction says")
    pairs: int = Field(default=0, description="informative pairs behind the accuracy")
    example: str | None = Field(default=None, description="one failing pair in the paper's notation, if any")
    tests: list[VariableTest] = Field(default=[], description="one per variable of the source that can change the target's")
    frozen: list[str] = Field(default=[], description="other nodes' sites held at their base values (those that can lie between)")
    route: str = Field(default="target", description="target: through the target's sites alone; answer: through them or around them, to the answer tokens it serves")
    detail: str = ""


class CircuitMetrics(_Frozen):
    faithfulness: Estimate | None = Field(default=None, description="share of clean-correct questions still right with every site outside the circuit mean-ablated")
    completeness: Estimate | None = Field(default=None, description="share of clean-correct questions that fail with the circuit's sites mean-ablated (high is complete)")
    resample: ResampleMetrics | None = Field(default=None, description="the same two metrics under resample ablation (values from other questions of the same classes)")
    minimality: dict[str, float] = Field(default={}, description="faithfulness drop when each node is left out")
    scope: list[str] = Field(default=[], description="answer tokens measured: those the hypothesis's variables can change")
    clean_accuracy: Estimate | None = None


class SiteRepair(_Frozen):
    """What leaving one unit outside the circuit un-ablated does (alone, or after the earlier steps of the smallest set).
    A unit is one site, or two co-located heads kept together."""

    sites: list[str]
    faithfulness: float = Field(description="faithfulness with these sites (and, in the smallest set, the steps before them) left un-ablated")
    restores: float = Field(description="faithfulness gained by leaving these sites un-ablated")
    tokens_restored: float = Field(description="gain in the share of in-scope answer tokens right (clean-correct questions)")
    completeness_gain: float | None = Field(default=None, description="ranking only: completeness gained by adding the site to the circuit")
    digits: dict[str, int] = Field(default={}, description="answer token -> clean-correct questions on which it goes from wrong to right")
    classes: dict[str, int] = Field(default={}, description="question class -> clean-correct questions with some answer token repaired")


class GapReport(_Frozen):
    """What a hypothesis that falls short of its faithfulness or completeness threshold is missing.

    ``ranking``: every useful site outside the circuit (an MLP that holds circuit neurons contributes
    its other neurons) and every pair of such co-located heads, by how much faithfulness it restores
    when it alone is left un-ablated (ties: answer tokens restored, then site order). ``smallest_set``:
    the shortest prefix of the useful sites ordered by necessity (how much faithfulness drops when each
    is ablated again with all the others kept) that reaches the threshold, so a small set, not a proven
    minimum (``verify.gap``).
    """

    ablation: str = "mean"
    threshold: float | None = Field(description="the hypothesis's min_faithfulness (no set is searched without one)")
    faithfulness: float = Field(description="faithfulness of the circuit as placed, on the same questions")
    questions: int = Field(description="clean-correct questions behind every figure here")
    ranking: list[SiteRepair] = []
    smallest_set: list[SiteRepair] = Field(default=[], description="the set's steps, in order; each entry's figures include the sites before it")
    reached: bool = Field(default=False, description="the smallest set brings faithfulness to the threshold")
    method: str = "necessity order"


class ExplainedAccuracy(_Frozen):
    """The model's own accuracy on the classes the hypothesis explains (from its card), and the families it fails there."""

    classes: list[str]
    questions: int = Field(description="class-stratified questions behind the accuracy")
    accuracy: Estimate
    families_measured: list[str] = Field(default=[], description="hard-question families in the card (empty: not measured)")
    families_failed: dict[str, int] = Field(default={}, description="family -> failures on questions of these classes")
    warning: str = Field(default="", description="set when the model fails a family on these classes")


class SiteNote(_Frozen):
    """What a useful site that no node was assigned to computes, by the model's labels (``verify --labels``)."""

    site: str
    computes: list[str] = Field(default=[], description="its labels, each with the name it also goes by (A(0)=SA(0)); empty: unexplained")
    text: str = Field(description="the label's line: 'A(1) 0.98 [0.96, 0.99]', 'unexplained (best SC(2) 0.84 [0.73, 0.91])'")


class ModelLayout(_Frozen):
    """What a renderer needs to know about the model, so reports re-render without it."""

    op: str
    digits: int
    n_layers: int
    n_heads: int
    n_ctx: int
    position_labels: list[str] = Field(description="paper label of every token position: D5 .. OPR .. = .. A0")


class Verdict(_Frozen):
    """The verdict of one hypothesis on one model."""

    hypothesis: str
    model: str
    layout: ModelLayout
    edges: list[tuple[str, str]] = Field(default=[], description="the expanded hypothesis graph's edges")
    edge_results: list[EdgeVerdict] = Field(default=[], description="every edge's path-patching test, in the order of ``edges``")
    status: HypothesisStatus
    summary: str
    nodes: list[NodeVerdict]
    metrics: CircuitMetrics
    useful_sites: list[str] = Field(default=[], description="sites whose ablation breaks some question")
    seed: int
    engine_path: Literal["fast", "hooked"] = Field(
        default="fast", description="which engine path measured the model: the fast functional pass, or the hooked fallback (engine.hooked)"
    )
    settings: dict[str, float | int | str] = {}
    model_accuracy: ExplainedAccuracy | None = Field(default=None, description="the model's accuracy on the explained classes (see verify.accuracy)")
    gap: GapReport | None = Field(default=None, description="set when faithfulness or completeness falls short of its threshold (see verify.gap)")
    ablation_disagreement: list[str] = Field(
        default=[], description="circuit checks whose outcome (passes / fails / unsure) differs between mean and resample ablation"
    )
    site_labels: list[SiteNote] | None = Field(
        default=None, description="with labels on: what each useful site left unassigned computes (left out of the JSON when off)"
    )

    @model_serializer(mode="wrap")
    def _without_unasked_labels(self, handler):
        data = handler(self)
        if self.site_labels is None:
            data.pop("site_labels", None)  # labels off: the JSON is the same as before they existed
        return data

    def site_note(self, site: str) -> SiteNote | None:
        return next((n for n in self.site_labels or [] if n.site == site), None)

    def node(self, node_id: str) -> NodeVerdict:
        for n in self.nodes:
            if n.node == node_id:
                return n
        raise unknown("node", node_id, [n.node for n in self.nodes], UnknownNodeError)

    def edge(self, source: str, target: str) -> EdgeVerdict:
        for e in self.edge_results:
            if (e.source, e.target) == (source, target):
                return e
        raise unknown("edge", f"{source} -> {target}", [f"{e.source} -> {e.target}" for e in self.edge_results], UnknownNodeError)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


class Report(_Frozen):
    """Verdicts of many hypotheses on many models."""

    verdicts: list[Verdict]
    circuitspec_version: str
    seed: int
