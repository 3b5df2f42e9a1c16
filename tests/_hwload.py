"""Load a bundled hardware YAML for the cycle-model tests."""

from hwmodels.spec import load_hw


def load(name: str):
    return load_hw(name)
