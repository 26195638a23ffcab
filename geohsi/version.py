"""The geohsi version (one place; :data:`geohsi.__version__` and bundles read it).

.. versionadded:: 0.1
"""

__version__ = "0.1.0"
