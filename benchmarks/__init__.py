"""Reproducible performance runs. Each reports ratios against a baseline measured in the same run."""
