"""Test support: planted-circuit models with known ground truth (``circuitspec.testing.planted``)."""

from circuitspec.testing.planted import HeadUse, Neuron, PlantError, Planted, PlantParams, all_questions, answers, plant

__all__ = ["HeadUse", "Neuron", "PlantError", "Planted", "PlantParams", "all_questions", "answers", "plant"]
