"""Shared fixtures: models from the shipped zoo, loaded once per test session.

``zoo_model(name)`` returns a ``circuitspec.models.Model``; ``name`` is a shipped model's
full name or its name without the ``_tNK`` part (``add_d6_l2_h3_s372001``). Loaded
models are shared across tests: do not modify their weights (copy the state dict).
"""

from __future__ import annotations

import pytest


def pytest_configure(config):
    """One torch thread per process: the suite uses the cores with xdist worker processes
    (pyproject's addopts), and two threads per worker on a busy 2-core machine run several times slower."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def zoo_model():
    from circuitspec.models import load

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def add6_model(zoo_model):
    """The reference 6-digit addition model (2 layers, 3 heads, seed 372001)."""
    return zoo_model("add_d6_l2_h3_s372001")


@pytest.fixture(scope="session")
def add5_1layer_model(zoo_model):
    """The 1-layer 5-digit addition model (fails long carry cascades, as in the paper)."""
    return zoo_model("add_d5_l1_h3_t6K_s372001")


@pytest.fixture(scope="session")
def zoo_cards():
    """Cards of every shipped model."""
    from circuitspec.models import list_zoo

    return list_zoo()
