"""What a planted model lets one check: the planted algorithm as a spec, and recovery of a verdict.

``hypothesis_yaml(planted)`` writes the planted algorithm in the spec language (or, with
``wrong``, a deliberately wrong claim); ``recovery(planted, verdict)`` scores a verdict's placed
sites against the ground truth (site-level precision and recall).
"""

from __future__ import annotations

from dataclasses import dataclass

from circuitspec.testing.planted import Planted, PlantError

def _position_ref(planted_or_layout, position: int) -> str:
    lay = planted_or_layout
    if position == lay.d_prime(0):
        return "D'(0)"
    if position == lay.equals:
        return "="
    if position == lay.sign:
        return "sign"
    return f"P({position})"


WRONG_KINDS = ("shifted_sa", "empty_position", "sa_at_carry")


def hypothesis_yaml(planted: Planted, wrong: str | None = None) -> str:
    """The hypothesis of the planted algorithm, in the spec language (see module docstring).

    It states what a researcher would: which variable each node computes, at which token
    and on which kind of site, what it attends to and which answer digits it impacts;
    never the layer, head or neuron indices (the matcher must find those). One function that
    writes the document top to bottom, so it is a little over 80 lines.

    ``wrong`` makes one claim that was not planted (every other node stays right):

    - ``shifted_sa``: SA(n) is computed where A(n+1) is predicted (the neighbouring column);
    - ``empty_position``: ST(n) heads sit at OPR, where nothing was planted;
    - ``sa_at_carry``: SA(n) is computed at the carry position (whose heads see D(n) and
      D'(n), but whose output only ever feeds the carry).

    On an attention-only planted model (``testing.planted_attn``) SV(n) is one head and A(n)
    two (a copy and a step head); the rest is the same document.
    """
    if wrong is not None and wrong not in WRONG_KINDS:
        from circuitspec.errors import unknown

        raise unknown("wrong-hypothesis kind", wrong, WRONG_KINDS, PlantError)
    n = planted.params.digits
    v = _position_ref(planted.layout, planted.carry_position)
    name = f"planted-add-d{n}-s{planted.seed}" + (f"-wrong-{wrong.replace('_', '-')}" if wrong else "")
    sa_at, sa_range = "predicts A(n)", "0..digits-1"
    st_at = v
    if wrong == "shifted_sa":
        sa_at = "predicts A(n+1)"
    elif wrong == "sa_at_carry":
        sa_at = v
    elif wrong == "empty_position":
        st_at = "OPR"
    sa_impacts = "" if wrong else "\n    impacts: {exactly: A(n)}"
    if getattr(planted, "attn_only", False):  # testing.planted_attn: the carry and the readout are heads
        name = name.replace("planted-add", "planted-attn-add")
        sv_site, sv_what = "head", "a step head folds ST(n) and SV(n-1) into the cascaded carry"
        a_site, a_what = "head\n    max_heads: 2", "a copy head and a step head write (SA(n) + SV(n-1)) mod 10 for the unembedding"
    else:
        sv_site, sv_what = "neurons", "neurons fold ST(n) and SV(n-1) into the cascaded carry"
        a_site, a_what = "mlp", "the MLP reads (SA(n) + SV(n-1)) mod 10 into the answer"
    return f"""# Planted circuit (circuitspec.testing.planted), seed {planted.seed}; carry position {v}.
name: {name}
task: add
applies_to: {{digits: {n}}}
nodes:
  - id: SA{{n}}
    description: two heads (or one split head) copy D(n) and D'(n); their sum is SA(n)
    for_each: {{n: {sa_range}}}
    computes: SA(n)
    site: head
    max_heads: 2
    at: "{sa_at}"
    attends: {{to: ["D(n)", "D'(n)"], min_share: 0.9}}{sa_impacts}
  - id: ST{{n}}
    description: the same for column n at the carry position
    for_each: {{n: 0..digits-1}}
    computes: ST(n)
    site: head
    max_heads: 2
    at: "{st_at}"
    attends: {{to: ["D(n)", "D'(n)"], min_share: 0.9}}
    impacts: {{at_least: A(n+1)}}
  - id: SV{{n}}
    description: {sv_what}
    for_each: {{n: 0..digits-1}}
    computes: SV(n)
    site: {sv_site}
    at: "{v}"
    impacts: {{at_least: A(n+1)}}
  - id: C{{n}}
    description: a head moves the carry SV(n-1) to where A(n) is predicted
    for_each: {{n: 1..digits}}
    computes: SV(n-1)
    site: head
    at: predicts A(n)
    attends: {{to: "{v}", min_share: 0.9}}
    impacts: {{exactly: A(n)}}
  - id: A{{n}}
    description: {a_what}
    for_each: {{n: 0..digits}}
    computes: A(n)
    site: {a_site}
    at: predicts A(n)
    impacts: {{exactly: A(n)}}
edges:
  - flow: ST{{n}} -> SV{{n}}
    for_each: {{n: 0..digits-1}}
  - flow: SV{{n-1}} -> SV{{n}}
    for_each: {{n: 1..digits-1}}
  - flow: SV{{n-1}} -> C{{n}}
    for_each: {{n: 1..digits}}
  - flow: C{{n}} -> A{{n}}
    for_each: {{n: 1..digits}}
  - flow: SA{{n}} -> A{{n}}
    for_each: {{n: 0..digits-1}}
"""


def expected_sites(planted: Planted) -> dict[str, list[str]]:
    """What ``verify`` should place each node of ``hypothesis_yaml`` on (A{k}: the MLP site, or its
    heads in an attention-only planted model)."""
    return {node: ([planted.mlp_truth[node]] if node.startswith("A") and node in planted.mlp_truth else sites) for node, sites in planted.truth.items()}


@dataclass(frozen=True)
class NodeRecovery:
    """How a verdict placed one planted node."""

    node: str
    status: str  # the verdict's node status
    expected: tuple[str, ...]
    found: tuple[str, ...]
    exact: bool  # found == expected (neuron nodes: same position, layer and neuron set)
    missing_neurons: tuple[int, ...] = ()
    extra_neurons: tuple[int, ...] = ()
    core_found: bool = True  # neuron nodes: every neuron needed alone was found


@dataclass(frozen=True)
class Recovery:
    """Site-level precision and recall of a verdict against a planted model's ground truth."""

    nodes: dict[str, NodeRecovery]
    status: str

    @staticmethod
    def _units(sites) -> set[str]:
        """Heads and MLPs as they are; a neuron site as one unit per neuron."""
        from circuitspec.engine.sites import Site

        out: set[str] = set()
        for text in sites:
            site = Site.parse(text)
            if site.kind == "neurons":
                out |= {f"P{site.position}.L{site.layer}.N[{i}]" for i in site.neurons}
            else:
                out.add(str(site))
        return out

    def _counts(self) -> tuple[int, int, int]:
        found = expected = right = 0
        for r in self.nodes.values():
            f, e = self._units(r.found), self._units(r.expected)
            found, expected, right = found + len(f), expected + len(e), right + len(f & e)
        return found, expected, right

    @property
    def precision(self) -> float:
        """Share of placed units (heads, MLPs, single neurons) that are planted for that node."""
        found, _, right = self._counts()
        return right / found if found else 1.0

    @property
    def recall(self) -> float:
        """Share of planted units that the verdict placed on their node."""
        _, expected, right = self._counts()
        return right / expected if expected else 1.0

    @property
    def recovered(self) -> bool:
        """Every node confirmed on exactly its planted sites."""
        return all(r.status == "confirmed" and r.exact for r in self.nodes.values())


def recovery(planted: Planted, verdict) -> Recovery:
    """Compare a ``Verdict`` for ``hypothesis_yaml(planted)`` with the ground truth."""
    from circuitspec.engine.sites import Site

    expected = expected_sites(planted)
    out: dict[str, NodeRecovery] = {}
    for node, want in expected.items():
        try:
            nv = verdict.node(node)
        except KeyError:
            out[node] = NodeRecovery(node, "missing", tuple(want), (), False, core_found=False)
            continue
        found = tuple(nv.sites)
        if planted.kinds.get(node) == "neurons" and not node.startswith("A"):
            w = Site.parse(want[0])
            got = [Site.parse(s) for s in found]
            same_place = len(got) == 1 and (got[0].position, got[0].layer, got[0].kind) == (w.position, w.layer, "neurons")
            have = set(got[0].neurons) if same_place else set()
            core = set(Site.parse(planted.core[node]).neurons)
            out[node] = NodeRecovery(
                node, nv.status, tuple(want), found,
                exact=same_place and have == set(w.neurons),
                missing_neurons=tuple(sorted(set(w.neurons) - have)),
                extra_neurons=tuple(sorted(have - set(w.neurons))),
                core_found=same_place and core <= have,
            )
        else:
            out[node] = NodeRecovery(node, nv.status, tuple(want), found, exact=set(found) == set(want))
    return Recovery(out, verdict.status)
