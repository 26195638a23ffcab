"""geohsi.spectral."""
