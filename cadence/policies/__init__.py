"""Policies: observation normalizer → encoder → temporal backbone → action head."""

from .policy import PolicyConfig, SequencePolicy, count_params, make_policy, size_to_budget

__all__ = ["PolicyConfig", "SequencePolicy", "count_params", "make_policy", "size_to_budget"]
