"""The engine: sites, interventions, the batched runner, facts and their cache.

The only place in circuitspec that touches hooks or model internals. Everything above
(matcher, verifier, tests of planted circuits) goes through this API::

    from circuitspec.engine import Engine, Intervention, Site

    engine = Engine(model)                              # a loaded Model, or Engine(bridge, task)
    qs = engine.questions(500)                          # seeded, disjoint from the reference set
    ivs = [Intervention("mean", [s]) for s in engine.sites()]
    out = engine.run(qs, ivs)                           # out.pred / out.correct / out.logprob: [I, B, A]
    out.failure_rate                                    # [I]
    facts = engine.facts()                              # cached on disk; facts.useful_sites ...
    ranked = attribute(engine, qs).ranked("neurons", 50)  # one forward + backward pass
    confirm(engine, qs, ranked[:10])                    # exact ablations of the top candidates
"""

from circuitspec.engine.interventions import KINDS as INTERVENTION_KINDS
from circuitspec.engine.interventions import Intervention, interchange, mean, resample, zero
from circuitspec.engine.sites import Site, all_sites, check_sites, parse_sites

# Sites and interventions are plain data; the rest needs torch and loads on first use, so
# that reading sites (re-rendering a saved report) stays light.
_LAZY = {
    "attribution": ("Attribution", "Confirmation", "attribute", "confirm"),
    "facts": ("Facts", "FactsParams", "SiteFacts", "probe_sites"),
    "runner": ("ENGINE_VERSION", "CleanOutcomes", "Engine", "Outcomes"),
}


def __getattr__(name: str):
    import importlib

    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"circuitspec.engine.{module}"), name)
    raise AttributeError(name)

__all__ = [
    "ENGINE_VERSION",
    "Attribution",
    "Confirmation",
    "Facts",
    "FactsParams",
    "SiteFacts",
    "attribute",
    "confirm",
    "probe_sites",
    "INTERVENTION_KINDS",
    "CleanOutcomes",
    "Engine",
    "Intervention",
    "Outcomes",
    "Site",
    "all_sites",
    "check_sites",
    "interchange",
    "mean",
    "parse_sites",
    "resample",
    "zero",
]
