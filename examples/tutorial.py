"""circuitspec in five minutes: state a hypothesis in Python, verify it on two zoo models, render it.

The hypothesis is a finding of "Arithmetic in Transformers Explained" (Quirke, Neo, Barez) that
holds in one- and two-layer addition models alike: at the token that predicts answer digit A(n),
one or two layer-0 attention heads attend to the digits of column n and compute Base Add
SA(n) = (D_n + D'_n) mod 10 (ablating them breaks exactly A(n)), and another layer-0 head there
computes Carry One SC(n-1), whether column n-1 carries.

Run::

    python examples/tutorial.py                # report in ./tutorial-report
    python examples/tutorial.py --out DIR --models add_d5_l1_h3_t6K_s372001 add_d6_l2_h3_s372001
"""

from __future__ import annotations

import argparse
from pathlib import Path

import circuitspec as cs


def base_add_hypothesis() -> "cs.Hypothesis":
    """The hypothesis, written with the fluent builder (the same fields as a YAML spec)."""
    return (
        cs.HypothesisBuilder("base-add", task="add", description="SA(n) and SC(n-1) by layer-0 heads where A(n) is predicted")
        .applies_to(digits="2..", heads="3..")
        .node(
            "SA{n}",
            "SA(n)",
            for_each=cs.EACH_DIGIT,
            site="head",
            max_heads=2,
            at="predicts A(n)",
            layers=0,
            attends=cs.attends(["D(n)", "D'(n)"], 0.3),
            impacts={"exactly": "A(n)"},
            description="Base Add of column n",
        )
        .node(
            "SC{n}",
            "SC(n)",
            for_each=cs.EACH_DIGIT,
            site="head",
            at="predicts A(n+1)",
            layers=0,
            attends=cs.attends(["D(n)", "D'(n)"], 0.3),
            description="Carry One out of column n, read where A(n+1) is predicted",
        )
        .build()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tutorial-report"), help="report folder")
    parser.add_argument("--models", nargs="*", help="zoo models to verify (default: the first two the hypothesis applies to)")
    args = parser.parse_args(argv)

    h = base_add_hypothesis()
    print("The hypothesis, as YAML (save it as a spec file for `circuitspec verify`):")
    print(h.to_yaml())

    models = args.models or [card.name for card in cs.list_zoo() if h.applies(card.shape)][:2]
    if len(models) < 2:
        raise SystemExit("the zoo has fewer than two models this hypothesis applies to")
    report = cs.verify_many(h, models, out=args.out)  # facts are measured once per model and cached

    for verdict in report.verdicts:
        print(f"\n{verdict.model}: {verdict.status} ({verdict.summary})")
        for node in verdict.nodes:
            where = " ".join(node.sites) or "-"
            accuracy = min((t.accuracy.value for t in node.tests), default=None)
            figure = f", interchange accuracy {accuracy:.2f}" if accuracy is not None else ""
            print(f"  {node.node:5} {node.status:12} {where}{figure}")

    first = report.verdicts[0]
    (args.out / "base-add-graph.svg").write_bytes(cs.graph_svg(first))
    (args.out / "base-add-nodemap.svg").write_bytes(cs.node_map_svg(first))
    print(f"\nreport: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
