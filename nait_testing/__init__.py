"""Helpers shared by tests/ and bench/: tiny random models, synthetic stores, data files, the small demo, the
app under AppTest and in a browser. Not part of the product (not in the wheel's package list): importable
from the repository root, as pytest (`pythonpath` in pyproject.toml) and the bench scripts set it up."""
