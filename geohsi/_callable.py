"""Callable modules: ``geohsi.train(...)`` and ``import geohsi.train.loop`` both work.

A stage's public function often shares its name with the stage's module (``geohsi.ingest`` the
function, ``geohsi/ingest.py`` the module). Importing a submodule rebinds the package attribute
to the module, so a plain function export would be shadowed. Instead the module itself is made
callable and forwards to its function.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    __geohsi_call__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, _, attr = self.__geohsi_call__.rpartition(":")
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)


def make_callable(module_name: str, target: str) -> None:
    """Make ``module_name`` callable; calls go to ``target`` (``"package.module:function"``)."""
    mod = sys.modules[module_name]
    mod.__class__ = _CallableModule
    mod.__geohsi_call__ = target
