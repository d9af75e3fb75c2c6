"""Labels against a planted circuit's ground truth: precision and recall of what ``label`` names.

A planted node is *recalled* when the site that realises it carries its variable as a label (or a
label that is the same variable under another name, ``VariableScore.same_as``): a head node on its
head, or its co-located head set; a neuron node on its MLP. Every label given is *correct* when
its site is a planted node's and the variable is that node's; a label on any other site (a decoy,
a site nothing was planted on, a set mixing two nodes' heads) is wrong. Neuron sets found for a
labelled MLP are checked too: never a neuron outside the planted set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from circuitspec.engine.sites import Site
from circuitspec.match.label import Labels, SiteLabel
from circuitspec.testing.planted import Planted
from circuitspec.vocabulary import key_text


@dataclass
class LabelRecovery:
    recalled: list[str] = field(default_factory=list)  # planted nodes labelled with their variable
    missed: dict[str, str] = field(default_factory=dict)  # node -> what its site got instead
    correct: int = 0  # labels that name a planted node's variable on its site
    wrong: list[str] = field(default_factory=list)  # 'site: variable' of every other label
    decoys_labelled: list[str] = field(default_factory=list)
    extra_neurons: list[str] = field(default_factory=list)  # 'site: neuron' outside the planted set

    @property
    def recall(self) -> float:
        total = len(self.recalled) + len(self.missed)
        return len(self.recalled) / total if total else 1.0

    @property
    def precision(self) -> float:
        given = self.correct + len(self.wrong)
        return self.correct / given if given else 1.0


def _names(v) -> set[str]:
    return {v.variable, *v.same_as}


def _node_site(planted: Planted, node: str) -> str:
    """The label-table name of the site a node is planted on (its MLP for neuron nodes)."""
    if planted.kinds[node] == "neurons":
        return planted.mlp_truth[node]
    sites = sorted(Site.parse(s) for s in planted.truth[node])
    if len(sites) == 1:
        return str(sites[0])
    return f"P{sites[0].position}.L{sites[0].layer}." + "+".join(f"H{s.head}" for s in sites)


def label_recovery(planted: Planted, labels: Labels) -> LabelRecovery:
    """Score ``labels`` of a planted model against its ground truth (see the module docstring)."""
    out = LabelRecovery()
    records: dict[str, SiteLabel] = {s.site: s for s in labels.sites}
    expected: dict[str, set[str]] = {}  # site name -> variables planted there
    for node in planted.truth:
        site = _node_site(planted, node)
        want = key_text(planted.variables[node])
        expected.setdefault(site, set()).add(want)
        r = records.get(site)
        if r is not None and r.status == "labelled" and any(want in _names(v) for v in r.variables):
            out.recalled.append(node)
        else:
            out.missed[node] = r.text if r is not None else "not useful"
    planted_sites = [Site.parse(s) for node in planted.truth if planted.kinds[node] == "neurons" for s in planted.truth[node]]
    allowed = {(s.layer, s.position, n) for s in planted_sites for n in s.neurons}
    decoys = set(planted.decoys)
    for r in labels.sites:
        if r.status != "labelled":
            continue
        if r.site in decoys:
            out.decoys_labelled.append(r.site)
        for v in r.variables:
            if _names(v) & expected.get(r.site, set()):
                out.correct += 1
            else:
                out.wrong.append(f"{r.site}: {v.variable}")
        for n in r.neurons:
            found = Site.parse(n.site)
            out.extra_neurons += [f"{n.site}: {i}" for i in found.neurons if (found.layer, found.position, i) not in allowed]
    return out
