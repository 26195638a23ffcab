"""geohsi.train."""
