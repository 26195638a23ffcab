"""The geohsi version (one place; :data:`geohsi.__version__`, ``geohsi --version``, bundles and
reports read it). The docs' "since 0.3" / ``versionadded:: 0.3`` name the development series this
version belongs to.

.. versionadded:: 0.1
"""

__version__ = "0.3.0.dev0"
