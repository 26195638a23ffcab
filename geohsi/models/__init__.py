"""geohsi.models: the SpectralGPT encoder, its heads and checkpoint I/O.

See :mod:`geohsi.models.spectralgpt` (encoder, configs, official checkpoints) and
:mod:`geohsi.models.heads` (task heads).

.. versionadded:: 0.1
"""

from geohsi.models.heads import POOL_MODES, ClassificationHead
from geohsi.models.spectralgpt import (
    CONFIGS,
    KNOWN_CHECKPOINTS,
    SpectralGPT,
    SpectralGPTClassifier,
    SpectralGPTConfig,
    build_classifier,
    checkpoint_filter_fn,
    count_flops,
    count_parameters,
    load_backbone,
    load_official_checkpoint,
    load_state_dict_checked,
    resample_pos_embed,
    resolve_config,
    save_backbone,
    spectralgpt_base,
    spectralgpt_small,
    spectralgpt_tiny,
)

__all__ = [
    "CONFIGS",
    "KNOWN_CHECKPOINTS",
    "POOL_MODES",
    "ClassificationHead",
    "SpectralGPT",
    "SpectralGPTClassifier",
    "SpectralGPTConfig",
    "build_classifier",
    "checkpoint_filter_fn",
    "count_flops",
    "count_parameters",
    "load_backbone",
    "load_official_checkpoint",
    "load_state_dict_checked",
    "resample_pos_embed",
    "resolve_config",
    "save_backbone",
    "spectralgpt_base",
    "spectralgpt_small",
    "spectralgpt_tiny",
]
