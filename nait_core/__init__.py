"""NAIT Studio's engine: capture neuron activations, build capability features, score and select data.

The names most users need (capture itself is `nait_core.capture.capture`):
    load_model, load_data, run_select, build_feature, Feature, score_store, ScoreOptions, select, Cut, export
"""
from .features import Feature, build_feature
from .models import load_model
from .pipeline import load_data, run_select
from .scoring import ScoreOptions, score_store
from .selection import Cut, export, select

__all__ = ["Cut", "Feature", "ScoreOptions", "build_feature", "export", "load_data", "load_model",
           "run_select", "score_store", "select"]
