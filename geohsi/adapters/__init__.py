"""geohsi.adapters."""
