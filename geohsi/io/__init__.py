"""geohsi.io."""
