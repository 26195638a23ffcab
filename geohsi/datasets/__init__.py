"""geohsi.datasets."""
