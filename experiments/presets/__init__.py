"""Presets of the papers' experiments: scorer lists, model lists and the papers' own report views
(registered on import). Config files in `experiments/configs/` combine them."""
