"""Models: cards, building, storage, training, evaluation and the shipped zoo.

``card`` imports without torch (``ModelCard``, ``parse_name``; the shape is ``vocabulary.ModelShape``); the rest
loads on first use.
"""

from circuitspec.models.card import (
    Architecture,
    ClassResult,
    Interval,
    ModelCard,
    Recipe,
    Results,
    TaskSpec,
    UniformResult,
    parse_name,
    strip_steps,
)

_LAZY = {
    "Model": "zoo",
    "load": "zoo",
    "save": "zoo",
    "list_zoo": "zoo",
    "zoo_dir": "zoo",
    "import_pth": "zoo",
    "export_pth": "zoo",
    "model_from_tensors": "zoo",
    "build_bridge": "build",
    "plan": "training",
    "train": "training",
    "Trained": "training",
    "StepInfo": "training",
    "ins1_init": "training",
    "measure": "evaluate",
    "uniform_failures": "evaluate",
    "class_accuracy": "evaluate",
    "wrong_answers": "evaluate",
    "failed": "evaluate",
    "clopper_pearson": "evaluate",
}

__all__ = [
    "Architecture", "ClassResult", "Interval", "ModelCard", "Recipe", "Results", "TaskSpec",
    "UniformResult", "parse_name", "strip_steps", *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"circuitspec.models.{module}"), name)
