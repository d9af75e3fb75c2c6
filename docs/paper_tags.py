"""The labels of 6-digit 2-layer addition models beside the tags the paper's library publishes.

The authors' library tags heads of its add_d6_l2_h3_t15K by hand (shared DOMAIN.md): ST of columns 2..5
on layer-0 heads of the question tail (P11, P12, P14), Carry One SC of the column below by one layer-0
head at each answer token P15..P19, Base Add SA by a layer-0 head pair at P15..P20, and no purpose for any
MLP. Head indices differ between trainings, so each tag is compared by role: at its position, in its
layer, what do the labels of ``circuitspec label`` say? Prints a markdown table, one column per model.

    circuitspec label 'add_d6_l2_*' -o labels/
    python docs/paper_tags.py labels/add_d6_l2_*.labels.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from circuitspec.match.label import Labels, SiteLabel
from circuitspec.spec.generalise import parse_key


def _columns(site: SiteLabel) -> set[tuple[str, int | None]]:
    """Every variable instance a site's labels name (their aliases included)."""
    return {parse_key(t) for v in site.variables for t in (v.variable, *v.same_as)}


def _heads(labels: Labels, position: int) -> list[SiteLabel]:
    """Layer-0 head sites (and head sets) at ``position``, their own records (not 'in_set' members)."""
    return [s for s in labels.sites if s.layer == 0 and s.position == position and s.kind in ("head", "heads") and s.status != "in_set"]


def tail_tag(labels: Labels, position: int, column: int) -> str:
    """What the layer-0 heads at a tail position compute about ``column``."""
    heads = _heads(labels, position)
    found = [f"{s.site.split('.', 1)[1]} {v.name}" for s in heads for v in s.variables if parse_key(v.variable)[1] == column]
    return "; ".join(found) if found else "none (" + ", ".join(f"{s.site.split('.', 1)[1]} {s.status}" for s in heads) + ")"


def answer_tag(labels: Labels, want: set[str], below: bool) -> str:
    """At how many answer tokens some layer-0 head (or head set) carries ``want`` of its digit's column
    (``below``: of the column under the digit predicted there)."""
    predicts = {labels.position_labels.index(f"A{n + 1}"): n for n in range(labels.digits)}  # the token before A(n) predicts it
    hits, total, pairs = 0, 0, 0
    for position, n in sorted(predicts.items()):
        column = n - 1 if below else n
        if column < 0:
            continue
        total += 1
        sites = [s for s in _heads(labels, position) if any((name, column) in _columns(s) for name in want)]
        hits += bool(sites)
        pairs += any(s.kind == "heads" for s in sites)
    return f"{hits} of {total}" + (f" ({pairs} on a head pair)" if pairs else "")


def mlp_tag(labels: Labels) -> str:
    mlps = [s for s in labels.sites if s.kind == "mlp"]
    return f"{sum(s.status == 'labelled' for s in mlps)} of {len(mlps)} useful MLPs labelled"


def table(files: list[str]) -> str:
    models = [Labels.model_validate_json(Path(f).read_text()) for f in files]
    rows = [
        ("ST(2) by a layer-0 head at P11 (D'1)", lambda m: tail_tag(m, 11, 2)),
        ("ST(3) by a layer-0 head at P12 (D'0)", lambda m: tail_tag(m, 12, 3)),
        ("ST(4) (and SS) by a layer-0 head at P14 (sign token)", lambda m: tail_tag(m, 14, 4)),
        ("ST(5) (and SC) by a layer-0 head at P14", lambda m: tail_tag(m, 14, 5)),
        ("SC of the column below by a layer-0 head at P15..P19", lambda m: answer_tag(m, {"SC", "ST", "SV"}, below=True)),
        ("SA by a layer-0 head pair at P15..P20", lambda m: answer_tag(m, {"SA", "A"}, below=False)),
        ("MLPs: no purpose (0 of 16-17)", mlp_tag),
        ("useful sites unexplained", lambda m: str(m.counts()["unexplained"])),
    ]
    out = ["| published tag | " + " | ".join(m.model for m in models) + " |", "|---" * (len(models) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(f(m) for m in models) + " |" for name, f in rows]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(table(sys.argv[1:]))
