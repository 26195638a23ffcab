"""geohsi.training — fitting models: fine-tuning with PEFT adapters, MAE pretraining, classical baselines.

* :mod:`~geohsi.training.config` — :class:`RunConfig` (the options every run shares), nested by
  :class:`TrainConfig` and :class:`PretrainConfig`; YAML/TOML config files;
* :mod:`~geohsi.training.runner` — the one runner of both loops: optimisation step, schedule,
  checkpoint/resume, progress, seeding;
* :mod:`~geohsi.training.finetune` — :func:`train` (``geohsi train``);
* :mod:`~geohsi.training.pretraining` — :func:`pretrain` (``geohsi pretrain``);
* :mod:`~geohsi.training.baselines` — :func:`baseline` (``geohsi baseline``).

.. versionadded:: 0.1
"""

from geohsi.training.baselines import baseline
from geohsi.training.config import ADAPTERS, PretrainConfig, RunConfig, TrainConfig, load_config_file, resolve_train_config
from geohsi.training.finetune import train
from geohsi.training.pretraining import pretrain
from geohsi.training.runner import Runner

__all__ = [
    "ADAPTERS",
    "PretrainConfig",
    "RunConfig",
    "Runner",
    "TrainConfig",
    "baseline",
    "load_config_file",
    "pretrain",
    "resolve_train_config",
    "train",
]
