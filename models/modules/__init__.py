"""Builders of local TF Hub text-embedding modules (TF2 SavedModels in models/hub/<name>/)."""
