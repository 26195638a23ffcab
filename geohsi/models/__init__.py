"""geohsi.models: the SpectralGPT encoder, its heads, the masked autoencoder and checkpoint I/O.

* :mod:`~geohsi.models.config` — :class:`SpectralGPTConfig` and the named sizes (``tiny``, ``small``, ``base``);
* :mod:`~geohsi.models.layers` — tubelet embedding, attention, MLP, block;
* :mod:`~geohsi.models.spectralgpt` — the encoder, the patch classifier, factories, cost formulas;
* :mod:`~geohsi.models.decoder` — the dense segmenter (encoder + :class:`~geohsi.models.decoder.DenseDecoder`);
* :mod:`~geohsi.models.heads` — the pooled classification head;
* :mod:`~geohsi.models.mae` — SpectralGPT's masked-autoencoder pretraining objective;
* :mod:`~geohsi.models.checkpoint` — official ``.pth`` and geohsi safetensors, loaded strictly;
* :mod:`~geohsi.models.default` — the pretrained backbone shipped with geohsi.

.. versionadded:: 0.1
"""

from geohsi.models.checkpoint import (
    KNOWN_CHECKPOINTS,
    checkpoint_filter_fn,
    load_backbone,
    load_official_checkpoint,
    load_state_dict_checked,
    resample_pos_embed,
    save_backbone,
)
from geohsi.models.config import CONFIGS, SpectralGPTConfig, resolve_model_config
from geohsi.models.heads import POOL_MODES, ClassificationHead
from geohsi.models.spectralgpt import (
    SpectralGPT,
    SpectralGPTClassifier,
    build_classifier,
    count_flops,
    count_parameters,
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
    "resolve_model_config",
    "save_backbone",
    "spectralgpt_base",
    "spectralgpt_small",
    "spectralgpt_tiny",
]
