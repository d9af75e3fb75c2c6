"""A node test held to chosen answer tokens (``test: {answers: [sign]}``), on real subtraction models.

On sub_d6_l2_h3_t30K_s505817 two layer-0 heads at '=' predict the sign and also feed A5 by a route the
causal model does not name (forcing the sign there is not what the model does to A5). Held to every
token they serve, no placement passes the sign's interchange test. Held to the sign, the pair passes at
1.00. On sub_d6_l2_h3_t30K_s372001, which computes the sign in layer 1, the same claim fails either way:
the option narrows what is compared and makes no wrong site pass.
"""

from __future__ import annotations

import pytest
import torch

from circuitspec.spec import Hypothesis
from circuitspec.verify.core import verify_model
from circuitspec.models import load

torch.set_num_threads(1)

SIGN = """\
name: sign_layer0{suffix}
task: sub
applies_to: {{digits: 6, layers: 2, heads: 3..}}
nodes:
  - id: SIGN
    computes: SGN
    site: head
    max_heads: 2
    at: =
    layers: 0
    impacts: {{at_least: sign}}
{test}"""


@pytest.mark.parametrize("model,held", [("sub_d6_l2_h3_t30K_s505817", True), ("sub_d6_l2_h3_t30K_s372001", False)])
def test_a_test_held_to_the_sign_places_only_the_sign_heads(model, held, tmp_path):
    on_sign = Hypothesis.from_yaml(SIGN.format(suffix="", test="    test: {answers: [sign]}\n"))
    on_all = Hypothesis.from_yaml(SIGN.format(suffix="_all", test=""))
    sign, every = (v.nodes[0] for v in verify_model([on_sign, on_all], load(model), seed=0, cache_dir=tmp_path))
    assert every.status == "not_placed" and "A5" in every.detail  # held to A5 as well, it fails there
    if held:
        assert sign.status == "confirmed" and sign.sites == ["P13.L0.H0", "P13.L0.H1"]
        assert sign.tests[0].accuracy.value == 1.0 and sign.tests[0].pairs >= 200
    else:
        assert sign.status == "not_placed" and "at sign" in sign.detail
