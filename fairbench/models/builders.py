"""The table of network architectures that evaluator entries and distillers name."""

from ..core.registry import Registry

MODEL_BUILDERS: Registry = Registry("architecture")
model_builder = MODEL_BUILDERS.register
