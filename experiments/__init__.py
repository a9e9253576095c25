"""Experiment configs (`configs/*.py`, each with `get_config(variant)`) and entry points."""
