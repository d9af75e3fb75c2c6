"""Test support: planted-circuit models with known ground truth (``circuitspec.testing.planted``;
attention-only ones in ``testing.planted_attn``), their weights (``testing.weights``) and the
checks they allow (``testing.recovery``)."""

from circuitspec.testing.planted import PlantError, Planted, PlantParams, all_questions, answers, plant
from circuitspec.testing.planted_attn import AttnPlanted, AttnPlantParams, plant_attn
from circuitspec.testing.recovery import WRONG_KINDS, Recovery, hypothesis_yaml, recovery
from circuitspec.testing.weights import HeadUse, Neuron

__all__ = [
    "WRONG_KINDS", "AttnPlantParams", "AttnPlanted", "HeadUse", "Neuron", "PlantError", "Planted", "PlantParams", "Recovery",
    "all_questions", "answers", "hypothesis_yaml", "plant", "plant_attn", "recovery",
]
