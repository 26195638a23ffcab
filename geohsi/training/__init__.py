"""geohsi.training — fitting models: fine-tuning with PEFT adapters, MAE pretraining, classical baselines.

* :mod:`~geohsi.training.config` — :class:`RunConfig` (the options every run shares), nested by
  :class:`TrainConfig` and :class:`PretrainConfig`; YAML/TOML config files;
* :mod:`~geohsi.training.data` — :class:`LabelSource` and :func:`load_training_data`: one or many
  scenes with their labels (stores, label rasters by name, one vector file) → the labelled pixels;
* :mod:`~geohsi.training.loader` — scenes in memory or streamed chunk by chunk, batches prefetched;
* :mod:`~geohsi.training.runner` — the one runner of both loops: optimisation step, schedule,
  checkpoint/resume, progress, seeding;
* :mod:`~geohsi.training.finetune` — :func:`train` (``geohsi train``);
* :mod:`~geohsi.training.pretraining` — :func:`pretrain` (``geohsi pretrain``);
* :mod:`~geohsi.training.baselines` — :func:`baseline` (``geohsi baseline``).

.. versionadded:: 0.1
"""

from geohsi.training.baselines import baseline
from geohsi.training.config import ADAPTERS, PretrainConfig, RunConfig, TrainConfig, load_config_file, resolve_train_config
from geohsi.training.data import LabelSource, TrainingData, load_training_data
from geohsi.training.finetune import train
from geohsi.training.pretraining import pretrain
from geohsi.training.runner import Runner

__all__ = [
    "ADAPTERS",
    "LabelSource",
    "PretrainConfig",
    "RunConfig",
    "Runner",
    "TrainConfig",
    "TrainingData",
    "baseline",
    "load_config_file",
    "load_training_data",
    "pretrain",
    "resolve_train_config",
    "train",
]
