"""The table of dataset constructions that ``registry/datasets/*.yaml`` entries name."""

from ..core.registry import Registry

DATASET_BUILDERS: Registry = Registry("dataset builder")
dataset_builder = DATASET_BUILDERS.register
