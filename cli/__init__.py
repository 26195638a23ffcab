"""geohsi command-line interface (installed as the import package ``geohsi.cli``)."""
