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

import json
import re
import sys

_KEY = re.compile(r"([A-Z]+)\((\d+)\)")


def _columns(text: str) -> set[tuple[str, int]]:
    return {(m[1], int(m[2])) for m in _KEY.finditer(text)}


def _heads(labels: dict, position: int) -> list[dict]:
    """Layer-0 head sites (and head sets) at ``position``, their own records (not 'in_set' members)."""
    return [s for s in labels["sites"] if s["layer"] == 0 and s["position"] == position and s["kind"] in ("head", "heads") and s["status"] != "in_set"]


def _names(site: dict) -> list[str]:
    return ["=".join([v["variable"], *v["same_as"][:1]]) + (f" (keep {', '.join(v['held'])})" if v["held"] else "") for v in site["variables"]]


def tail_tag(labels: dict, position: int, column: int) -> str:
    """What the layer-0 heads at a tail position compute about ``column``."""
    found = [f"{s['site'].split('.', 1)[1]} {n}" for s in _heads(labels, position) for n in _names(s) if any(c == column for _, c in _columns(n))]
    return "; ".join(found) if found else "none (" + ", ".join(f"{s['site'].split('.', 1)[1]} {s['status']}" for s in _heads(labels, position)) + ")"


def answer_tag(labels: dict, want: set[str], below: bool) -> str:
    """At how many answer tokens some layer-0 head (or head set) carries ``want`` of its digit's column
    (``below``: of the column under the digit predicted there)."""
    digits = labels["digits"]
    predicts = {labels["position_labels"].index(f"A{n + 1}"): n for n in range(digits)}  # the token before A(n) predicts it
    hits, total, pairs = 0, 0, 0
    for position, n in sorted(predicts.items()):
        column = n - 1 if below else n
        if column < 0:
            continue
        total += 1
        sites = [s for s in _heads(labels, position) if any((name, column) in _columns(x) for x in _names(s) for name in want)]
        hits += bool(sites)
        pairs += any(s["kind"] == "heads" for s in sites)
    return f"{hits} of {total}" + (f" ({pairs} on a head pair)" if pairs else "")


def mlp_tag(labels: dict) -> str:
    mlps = [s for s in labels["sites"] if s["kind"] == "mlp"]
    return f"{sum(s['status'] == 'labelled' for s in mlps)} of {len(mlps)} useful MLPs labelled"


def table(files: list[str]) -> str:
    models = [json.load(open(f)) for f in files]
    rows = [
        ("ST(2) by a layer-0 head at P11 (D'1)", lambda m: tail_tag(m, 11, 2)),
        ("ST(3) by a layer-0 head at P12 (D'0)", lambda m: tail_tag(m, 12, 3)),
        ("ST(4) (and SS) by a layer-0 head at P14 (sign token)", lambda m: tail_tag(m, 14, 4)),
        ("ST(5) (and SC) by a layer-0 head at P14", lambda m: tail_tag(m, 14, 5)),
        ("SC of the column below by a layer-0 head at P15..P19", lambda m: answer_tag(m, {"SC", "ST", "SV"}, below=True)),
        ("SA by a layer-0 head pair at P15..P20", lambda m: answer_tag(m, {"SA", "A"}, below=False)),
        ("MLPs: no purpose (0 of 16-17)", mlp_tag),
        ("useful sites unexplained", lambda m: str(sum(s["status"] == "unexplained" for s in m["sites"]))),
    ]
    out = ["| published tag | " + " | ".join(m["model"] for m in models) + " |", "|---" * (len(models) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(f(m) for m in models) + " |" for name, f in rows]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(table(sys.argv[1:]))
