"""Candidate networks built from an architecture: `layers.py` (shared building blocks), `nb201.py` (the
NAS-Bench-201 cell network). A space names its network factory (`CategoricalSpace.network`)."""
