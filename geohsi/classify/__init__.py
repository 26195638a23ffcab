"""geohsi.classify."""
