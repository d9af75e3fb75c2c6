"""JUnit XML: one test suite per hypothesis, one test case per (hypothesis, model).

CI systems then list circuit regressions like failing tests. A verdict that ``fails`` or is
``inconclusive`` becomes a ``<failure>`` (type = the status) whose message is the verdict's summary
and whose text lists every required node and edge that is not confirmed, with its reason and evidence; a
``not_applicable`` verdict is ``<skipped>``. Nothing time-dependent is written, so identical
verdicts give identical files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from circuitspec.render.style import fmt_estimate
from circuitspec.render.summary import counts, edge_counts, edge_text, failing_edges, failing_nodes, node_text, reason_text, worst_text
from circuitspec.verify.verdict import Report, Verdict


def _case(v: Verdict) -> ET.Element:
    case = ET.Element("testcase", {"classname": f"circuitspec.{v.hypothesis}", "name": v.model})
    props = ET.SubElement(case, "properties")
    c = counts(v)
    for name, value in [
        ("status", v.status),
        ("nodes_placed", c.text),
        ("edges_confirmed", edge_counts(v)),
        ("faithfulness", fmt_estimate(v.metrics.faithfulness)),
        ("completeness", fmt_estimate(v.metrics.completeness)),
        ("worst_node", worst_text(v)),
        ("seed", str(v.seed)),
    ]:
        ET.SubElement(props, "property", {"name": name, "value": value})
    if v.status in ("fails", "inconclusive"):
        bad = failing_nodes(v)
        names = ", ".join(n.node for n in bad)
        message = v.summary + (f" [nodes: {names}]" if names else "")
        fail = ET.SubElement(case, "failure", {"message": message, "type": v.status})
        lines = [f"{v.hypothesis} {v.status} on {v.model}: {v.summary}"]
        for n in bad:
            line, why = node_text(n), reason_text(n)
            lines.append(f"  {line}" + (f" - {why}" if why and why not in line else ""))
            if n.runner_up is not None:
                lines.append(f"    runner-up: {' '.join(n.runner_up.sites)} score {n.runner_up.score:.2f}")
            for t in n.tests + (n.runner_up.tests if n.runner_up else []):
                if t.example:
                    lines.append(f"    failing pair for {t.variable}: {t.example}")
        for e in failing_edges(v):
            lines.append(f"  edge {edge_text(e)}")
            if e.example:
                lines.append(f"    failing pair: {e.example}")
        fail.text = "\n".join(lines)
    elif v.status == "not_applicable":
        ET.SubElement(case, "skipped", {"message": v.summary})
    out = ET.SubElement(case, "system-out")
    out.text = "\n".join([*(node_text(n) for n in v.nodes), *(f"edge {edge_text(e)}" for e in v.edge_results)])
    return case


def junit_xml(verdicts: Sequence[Verdict] | Report) -> bytes:
    """The JUnit XML document (UTF-8 bytes) for the verdicts, in the order given."""
    if isinstance(verdicts, Report):
        verdicts = verdicts.verdicts
    root = ET.Element("testsuites", {"name": "circuitspec"})
    suites: dict[str, ET.Element] = {}
    tally: dict[str, list[int]] = {}
    for v in verdicts:
        if v.hypothesis not in suites:
            suites[v.hypothesis] = ET.SubElement(root, "testsuite", {"name": v.hypothesis})
            tally[v.hypothesis] = [0, 0, 0]
        suites[v.hypothesis].append(_case(v))
        t = tally[v.hypothesis]
        t[0] += 1
        t[1] += v.status in ("fails", "inconclusive")
        t[2] += v.status == "not_applicable"
    for name, suite in suites.items():
        tests, failures, skipped = tally[name]
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
    root.set("tests", str(sum(t[0] for t in tally.values())))
    root.set("failures", str(sum(t[1] for t in tally.values())))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
