"""geohsi.models."""
