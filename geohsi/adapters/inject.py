"""Put adapters into a model: one switch for LoRA, LoRA+, KronA, KronA+, LoKr, full FT and linear probing.

:func:`apply_adapter` replaces the ``nn.Linear`` modules whose names match the target patterns by
adapter layers, freezes everything else except the classification head (and, optionally, norms),
records the configuration on the model (:func:`adapter_config`) and returns an
:class:`AdapterSummary`. ``full`` and ``linear`` go through the same switch so every comparison of
the paper's table uses one code path.

Target patterns are matched against dotted module names (``encoder.blocks.3.attn.q``): a pattern
matches a name equal to it, ending in ``"." + pattern``, or matching it as a glob
(:func:`fnmatch.fnmatchcase`, also with an implicit ``*.`` prefix). Only ``nn.Linear`` modules
outside the head are adapted.

.. versionadded:: 0.1
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from geohsi.adapters.base import AdapterLayer
from geohsi.adapters.config import ADAPTER_CONFIGS, METHODS, AdapterConfig, adapter_config_for
from geohsi.adapters.krona import KronALinear
from geohsi.adapters.lokr import LoKrLinear
from geohsi.adapters.lora import LoRALinear
from geohsi.errors import UsageError

#: Every method name :func:`apply_adapter` accepts.

#: Target presets: name → module-name patterns. ``qv`` is the paper's choice (query and value).
PRESETS: dict[str, tuple[str, ...]] = {
    "qv": ("attn.q", "attn.v"),
    "qkv": ("attn.q", "attn.k", "attn.v"),
    "attn": ("attn.q", "attn.k", "attn.v", "attn.proj"),
    "all-linear": ("*",),
}

#: Adapter class of each adapter method ("+" variants share the module; they differ in lr groups).
LAYER_CLASSES: dict[str, type[AdapterLayer]] = {
    "lora": LoRALinear,
    "lora+": LoRALinear,
    "krona": KronALinear,
    "krona+": KronALinear,
    "lokr": LoKrLinear,
}

#: The attribute of a model holding its adapter configuration (a JSON-able dict).
CONFIG_ATTR = "geohsi_adapter"

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm)


@dataclasses.dataclass(frozen=True)
class AdapterSummary:
    """What :func:`apply_adapter` did, in the field's terms (peft's ``print_trainable_parameters``, the
    paper's tables): the adapter's weights and their share of the encoder, the head's weights, the
    total trained, and the file they make.

    ``str()`` gives one labelled line each (what ``geohsi train`` logs and ``geohsi info`` shows)::

        adapter          krona+ on attn.q, attn.v of blocks 0–3 (8 layers): factors A 8×8, B 16×16; λ 16
        adapter weights  3,200 (0.18 % of the 1.82 M encoder)
        head weights     176,176
        total trainable  179,376 of 1,999,728 weights (8.97 %)
        adapter file     ≈ 718 kB (fp32 weights)

    Attributes:
        method: one of :data:`METHODS`.
        targets: the module-name patterns that were matched (empty for ``full``/``linear``).
        adapted_layers: number of ``nn.Linear`` modules wrapped by adapters.
        adapter_params: parameters in the adapters.
        trainable_params: parameters with ``requires_grad`` (adapters + head + norms, or all).
        total_params: all parameters of the model after injection.
        backbone_params: parameters of the encoder (the model before injection, head excluded).
        head_params: parameters of the head (all trained).
        description: the adapter in one line (:func:`describe_adapter`).
        file_bytes: size of the saved adapter files, when known (a bundle's ``adapter/``); ``None``
            estimates it as 4 bytes per trainable weight.

    .. versionadded:: 0.1
    """

    method: str
    targets: tuple[str, ...]
    adapted_layers: int
    adapter_params: int
    trainable_params: int
    total_params: int
    backbone_params: int
    head_params: int
    description: str
    file_bytes: int | None = None

    @property
    def adapter_percent(self) -> float:
        """Adapter weights as a percentage of the encoder's (the paper's "% params" of a PEFT method)."""
        return 100.0 * self.adapter_params / self.backbone_params if self.backbone_params else 0.0

    @property
    def trainable_percent(self) -> float:
        """Trainable weights as a percentage of all the model's (peft's ``trainable%``)."""
        return 100.0 * self.trainable_params / self.total_params if self.total_params else 0.0

    @property
    def encoder_trained_params(self) -> int:
        """Trained weights of the encoder itself: its norms (``train_norms``), or all of it (``full``)."""
        return self.trainable_params - self.adapter_params - self.head_params

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields plus ``adapter_percent`` and ``trainable_percent``."""
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets)
        d.update(adapter_percent=self.adapter_percent, trainable_percent=self.trainable_percent)
        return d

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` rows, one per count (what ``str()`` aligns and ``geohsi info`` shows)."""
        encoder = f"the {_count(self.backbone_params)} encoder"
        rows = [("adapter", self.description)]
        if self.method == "full":
            rows.append(("encoder weights", f"{self.encoder_trained_params:,} (all of {encoder}, trained)"))
        else:
            rows.append(("adapter weights", f"{self.adapter_params:,} ({_percent(self.adapter_percent)} % of {encoder})"))
            if self.encoder_trained_params:
                rows.append(("norm weights", f"{self.encoder_trained_params:,} (the encoder's norms, trained)"))
        size = (
            f"≈ {_size(4 * self.trainable_params)} (fp32 weights)"
            if self.file_bytes is None
            else f"{_size(self.file_bytes)} on disk"
        )
        return rows + [
            ("head weights", f"{self.head_params:,}"),
            (
                "total trainable",
                f"{self.trainable_params:,} of {self.total_params:,} weights ({_percent(self.trainable_percent)} %)",
            ),
            ("adapter file", size),
        ]

    def __str__(self) -> str:
        rows = self.rows()
        w = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)

    def __rich__(self) -> Any:
        """A two-column :class:`rich.table.Table` (rich calls this when printing the summary)."""
        from rich.table import Table

        table = Table(title="parameters", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for k, v in self.rows():
            table.add_row(k, v)
        return table


def _percent(p: float) -> str:
    """A share as the papers print it: 0.18, 0.045, 9.85, 100."""
    if p >= 99.995:
        return "100"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}"


def _count(n: int) -> str:
    """A parameter count in millions or thousands, 3 significant digits (1.82 M, 114 k)."""
    return f"{n / 1e6:.3g} M" if n >= 1e6 else f"{n / 1e3:.3g} k"


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:.1f} kB"


def _ranges(ids: Iterable[int]) -> str:
    """``0–3, 6`` from ``{0, 1, 2, 3, 6}``."""
    out: list[str] = []
    for _, run in itertools.groupby(enumerate(sorted(ids)), lambda p: p[1] - p[0]):
        vals = [v for _, v in run]
        out.append(f"{vals[0]}–{vals[-1]}" if len(vals) > 1 else str(vals[0]))
    return ", ".join(out)


def _factor_text(layers: Mapping[str, Mapping[str, Sequence[int]]]) -> str:
    """The adapted layers' factor shapes: ``A 8×8, B 16×16``, or how many layouts when they differ."""
    layouts = {tuple((k, tuple(v)) for k, v in shapes.items()) for shapes in layers.values()}
    if len(layouts) != 1:
        return f"{len(layouts)} factor layouts"
    return "factors " + ", ".join(f"{k} {'×'.join(map(str, s))}" for k, s in next(iter(layouts)))


def describe_adapter(config: Mapping[str, Any]) -> str:
    """One line for an adapter configuration: method, targets, blocks, rank or factor shapes, λ.

    Args:
        config: an :func:`adapter_config` dict (a bundle's ``adapter`` record).

    Returns:
        E.g. ``krona+ on attn.q, attn.v of blocks 0–3 (8 layers): factors A 8×8, B 16×16; λ 16``.

    .. versionadded:: 0.1
    """
    method, opts = str(config["method"]), dict(config.get("options") or {})
    norms = "; the encoder's norms trained" if config.get("train_norms") else ""
    if method == "full":
        return "full fine-tuning: every encoder weight is trained"
    if method == "linear":
        return f"linear probe: the encoder is frozen, the head trained{norms}"
    layers: Mapping[str, Any] = config.get("layers") or {}
    blocks = {int(m.group(1)) for name in layers if (m := re.search(r"(?:^|\.)blocks\.(\d+)\.", name))}
    where = f" of blocks {_ranges(blocks)}" if blocks else ""
    parts = [f"rank {opts['r']}, α {opts['alpha']:g}"] if "r" in opts else []
    parts.append(_factor_text(layers))
    if "lr_ratio" in opts:
        parts.append(f"λ {opts['lr_ratio']:g}")
    return f"{method} on {', '.join(config.get('targets') or ())}{where} ({len(layers)} layers): {'; '.join(parts)}{norms}"


def resolve_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """Expand a preset name or pass through a sequence of patterns.

    Args:
        targets: a key of :data:`PRESETS`, or module-name patterns such as ``("attn.q", "mlp.fc1")``.

    Returns:
        The patterns.

    Raises:
        UsageError: an unknown preset name or an empty pattern list.

    .. versionadded:: 0.1
    """
    if isinstance(targets, str):
        if targets in PRESETS:
            return PRESETS[targets]
        if "," in targets:
            return resolve_targets(tuple(t.strip() for t in targets.split(",") if t.strip()))
        raise UsageError(
            f"targets={targets!r} is not a preset; use one of {', '.join(PRESETS)} or a list of module-name patterns"
        )
    pats = tuple(str(t) for t in targets)
    if not pats:
        raise UsageError("targets is empty; use a preset such as 'qv' or module-name patterns such as ('attn.q',)")
    return pats


def name_matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether the dotted module ``name`` matches any of ``patterns`` (see the module docstring)."""
    return any(name == p or name.endswith("." + p) or fnmatchcase(name, p) or fnmatchcase(name, "*." + p) for p in patterns)


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in prefixes)


def select_targets(model: nn.Module, patterns: Sequence[str], head: Sequence[str] = ()) -> list[tuple[str, nn.Linear]]:
    """The ``nn.Linear`` modules outside ``head`` whose names match ``patterns``, in module order.

    Args:
        model: the model to search.
        patterns: module-name patterns (see the module docstring).
        head: names of head submodules to leave out.

    Returns:
        ``(name, module)`` pairs.

    .. versionadded:: 0.1
    """
    return [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and not _under(n, head) and name_matches(n, patterns)
    ]


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """The adapter layers of ``model`` by module name.

    .. versionadded:: 0.1
    """
    return {n: m for n, m in model.named_modules() if isinstance(m, AdapterLayer)}


def _head_prefixes(model: nn.Module, head: str | Sequence[str] | None) -> tuple[str, ...]:
    if head is None:
        return ()
    names = (head,) if isinstance(head, str) else tuple(head)
    modules = dict(model.named_modules())
    return tuple(h for h in names if h in modules)


def trainable_parameter_names(model: nn.Module, config: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the parameters an adapter configuration trains (and that adapter files hold).

    Adapters' factors, every parameter of the head, and the norms' when ``train_norms``; every
    parameter for ``full``.

    Args:
        model: the model.
        config: an :func:`adapter_config` dict; None reads the one recorded on ``model``. Given a
            fresh model and a saved config, the result lists the non-adapter names the file must hold.

    Raises:
        UsageError: no config is given and the model has none (call :func:`apply_adapter` first).

    .. versionadded:: 0.1
    """
    cfg = adapter_config(model) if config is None else config
    if cfg["method"] == "full":
        return [n for n, _ in model.named_parameters()]
    heads = tuple(cfg["head"])
    adapter_ids = {id(p) for layer in adapter_layers(model).values() for p in layer.adapter_parameters()}
    norm_names: set[str] = set()
    if cfg.get("train_norms"):
        for mname, m in model.named_modules():
            if isinstance(m, _NORMS):
                norm_names.update(f"{mname}.{pn}" if mname else pn for pn, _ in m.named_parameters(recurse=False))
    return [n for n, p in model.named_parameters() if id(p) in adapter_ids or _under(n, heads) or n in norm_names]


def _resolve_adapter(model: nn.Module, method: str | AdapterConfig, cfg: dict[str, Any]) -> AdapterConfig:
    """The adapter config of a method name and its options (or the config given); refuses a model that has one."""
    if isinstance(method, AdapterConfig) and cfg:
        raise UsageError(f"give the options of {method.method!r} in its config, not as keywords ({', '.join(cfg)})")
    adapter = method if isinstance(method, AdapterConfig) else adapter_config_for(method, cfg)
    if getattr(model, CONFIG_ATTR, None) is not None:
        raise UsageError(
            f"the model already carries a {getattr(model, CONFIG_ATTR)['method']!r} adapter; build a fresh model first"
        )
    return adapter


def _summary(
    model: nn.Module, config: dict[str, Any], patterns: tuple[str, ...], heads: tuple[str, ...], backbone_params: int
) -> AdapterSummary:
    """The :class:`AdapterSummary` of an adapted model: layers, parameter counts and description."""
    layers = adapter_layers(model)
    return AdapterSummary(
        method=config["method"],
        targets=patterns,
        adapted_layers=len(layers),
        adapter_params=sum(p.numel() for lay in layers.values() for p in lay.adapter_parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_params=sum(p.numel() for p in model.parameters()),
        backbone_params=backbone_params,
        head_params=sum(p.numel() for n, p in model.named_parameters() if _under(n, heads)),
        description=describe_adapter(config),
    )


def apply_adapter(
    model: nn.Module,
    method: str | AdapterConfig,
    targets: str | Sequence[str] = "qv",
    *,
    train_norms: bool = False,
    head: str | Sequence[str] | None = "head",
    **cfg: Any,
) -> AdapterSummary:
    """Inject a PEFT method into ``model`` in place and freeze what it does not train.

    Args:
        model: e.g. a :class:`~geohsi.models.spectralgpt.SpectralGPTClassifier`; any module tree works.
        method: one of :data:`METHODS`, or its config (:mod:`geohsi.adapters.config`, e.g.
            ``LoRAConfig(r=4)``). ``full`` trains everything; ``linear`` only the head.
        targets: a preset of :data:`PRESETS` (``"qv"``, the paper's default, ``"qkv"``, ``"attn"``,
            ``"all-linear"``) or module-name patterns. Ignored by ``full``/``linear``.
        train_norms: also train the backbone's normalisation layers.
        head: name(s) of the head submodule(s) — trained, never adapted, always saved.
        **cfg: with a method name, its options (the fields of its config class): ``lora``:
            ``r=8, alpha=8, dropout=0``; ``krona``: ``a_shape=None, factor=-1, scale=1,
            zero_init="B", dropout=0``; ``lokr``: ``r=8, alpha=8, decompose_both=False,
            decompose_factor=-1, init="peft", dropout=0``; the "+" variants add ``lr_ratio=16`` (λ)
            and ``boost="zero"`` (which factor gets λ·lr).

    Returns:
        An :class:`AdapterSummary`.

    Raises:
        UsageError: unknown method, preset or option; no ``nn.Linear`` matches ``targets``; factor
            shapes that do not divide a layer; or the model already carries an adapter.

    .. versionadded:: 0.1
    """
    adapter = _resolve_adapter(model, method, cfg)
    method = adapter.method
    opts = adapter.options()
    heads = _head_prefixes(model, head)
    backbone_params = sum(p.numel() for n, p in model.named_parameters() if not _under(n, heads))

    patterns: tuple[str, ...] = ()
    preset = None
    layer_shapes: dict[str, dict[str, list[int]]] = {}
    if method in LAYER_CLASSES:
        patterns = resolve_targets(targets)
        preset = targets if isinstance(targets, str) and targets in PRESETS else None
        layer_shapes = _wrap_targets(model, adapter, patterns, heads)

    config: dict[str, Any] = {
        "method": method,
        "targets": list(patterns),
        "preset": preset,
        "options": opts,
        "train_norms": bool(train_norms),
        "head": list(heads),
        "layers": layer_shapes,
    }
    setattr(model, CONFIG_ATTR, config)

    train = set(trainable_parameter_names(model))
    for n, p in model.named_parameters():
        p.requires_grad_(n in train)

    return _summary(model, config, patterns, heads, backbone_params)


def _wrap_targets(
    model: nn.Module, adapter: AdapterConfig, patterns: tuple[str, ...], heads: tuple[str, ...]
) -> dict[str, dict[str, list[int]]]:
    """Swap every ``nn.Linear`` matching ``patterns`` (outside the heads) for the method's layer; their factor shapes.

    Every wrapper is built before any is swapped in, so a bad option leaves the model untouched.

    Raises:
        UsageError: no ``nn.Linear`` matches; a wrapper refuses its options (e.g. factor shapes).
    """
    chosen = select_targets(model, patterns, heads)
    if not chosen:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not _under(n, heads)]
        sample = ", ".join(linears[:4]) or "none"
        raise UsageError(
            f"targets {', '.join(patterns)} match no nn.Linear of the model (e.g. {sample}); "
            "use a preset such as 'qv' or patterns naming those layers"
        )
    cls = LAYER_CLASSES[adapter.method]
    kwargs = adapter.layer_kwargs()
    grad_flags = {id(p): p.requires_grad for p in model.parameters()}
    try:
        wrapped = [(n, cls(m, **kwargs)) for n, m in chosen]
        if hasattr(adapter, "boost"):  # the "+" methods: which factor learns λ times faster
            for _, layer in wrapped:
                layer.set_boost(adapter.boost)
    except Exception:
        for p in model.parameters():  # wrappers freeze their base layer on construction: undo
            p.requires_grad_(grad_flags[id(p)])
        raise
    shapes = {}
    for n, layer in wrapped:
        parent_name, _, child = n.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
        shapes[n] = layer.factor_shapes()
    return shapes


def adapter_config(model: nn.Module) -> dict[str, Any]:
    """The JSON-able adapter configuration recorded by :func:`apply_adapter` (a copy).

    Keys: ``method``, ``targets`` (patterns), ``preset``, ``options`` (r/α, factor shapes, scale,
    λ = ``lr_ratio``, ``boost``, dropout, …), ``train_norms``, ``head`` and ``layers`` (module name →
    factor shapes).

    Raises:
        UsageError: the model carries no adapter.

    .. versionadded:: 0.1
    """
    cfg = getattr(model, CONFIG_ATTR, None)
    if cfg is None:
        raise UsageError("the model carries no adapter; call geohsi.adapters.apply_adapter(model, method) first")
    return copy.deepcopy(cfg)


def adapter_summary(model: nn.Module, config: Mapping[str, Any]) -> AdapterSummary:
    """The :class:`AdapterSummary` of a recorded adapter configuration, applied to a fresh model.

    Counts a saved adapter (a bundle's ``adapter`` record) exactly as :func:`apply_adapter` counted it
    at training time. Build ``model`` on the ``meta`` device to count without allocating weights.

    Args:
        model: a freshly built model (no adapter yet), built like the one that was adapted; modified in place.
        config: an :func:`adapter_config` dict.

    Returns:
        The summary (``file_bytes`` unknown: set it with :func:`dataclasses.replace`).

    Raises:
        UsageError: the configuration does not fit ``model``.

    .. versionadded:: 0.1
    """
    return apply_adapter(
        model,
        config["method"],
        config.get("preset") or config.get("targets") or "qv",
        train_norms=bool(config.get("train_norms")),
        head=config.get("head") or None,
        **(config.get("options") or {}),
    )


def merge_adapter(model: nn.Module, *, unload: bool = False) -> int:
    """Fold every adapter's ΔW into its base weight (inference: one matmul per layer).

    Args:
        model: an adapted model.
        unload: also replace each adapter layer by its merged plain ``nn.Linear`` and drop the
            adapter configuration, leaving a model with the original module layout (what
            :func:`geohsi.models.spectralgpt.save_backbone` and the inference workers expect).
            Not reversible.

    Returns:
        The number of adapter layers merged (already merged ones are not counted again).

    .. versionadded:: 0.1
    """
    layers = adapter_layers(model)
    count = 0
    for m in layers.values():
        if not m.merged:
            m.merge()
            count += 1
    if unload:
        for n, m in layers.items():
            parent_name, _, child = n.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, m.base_layer)
        if hasattr(model, CONFIG_ATTR):
            delattr(model, CONFIG_ATTR)
    return count


def unmerge_adapter(model: nn.Module) -> int:
    """Undo :func:`merge_adapter` (subtract each ΔW again).

    Returns:
        The number of layers unmerged.

    .. versionadded:: 0.1
    """
    layers = [m for m in adapter_layers(model).values() if m.merged]
    for m in layers:
        m.unmerge()
    return len(layers)


def method_options(method: str, *, rank: int = 8, alpha: float | None = None, lr_ratio: float = 16.0) -> dict[str, Any]:
    """The options of :func:`apply_adapter` for a method, from the fine-tuning knobs.

    Args:
        method: one of :data:`METHODS`.
        rank: LoRA/LoKr rank (other methods have none).
        alpha: LoRA/LoKr α (``None``: equal to the rank, i.e. scaling 1).
        lr_ratio: λ of the ``+`` methods (LoRA+, KronA+).

    Returns:
        Keyword arguments for :func:`apply_adapter` (``r``, ``alpha``, ``lr_ratio`` as the method takes them).

    .. versionadded:: 0.1
    """
    base = method.rstrip("+")
    opts: dict[str, Any] = {}
    if base in ("lora", "lokr"):
        opts.update(r=rank, alpha=float(alpha if alpha is not None else rank))
    if method.endswith("+"):
        opts["lr_ratio"] = lr_ratio
    return opts


def count_adapter_parameters(
    config: Any,
    method: str,
    targets: str | Sequence[str] = "qv",
    *,
    num_classes: int = 0,
    head_hidden: int = 0,
    train_norms: bool = False,
    **cfg: Any,
) -> int:
    """Closed-form number of trainable parameters of a method on a SpectralGPT config.

    Counts without building the model, from the same shape rules the adapter layers use
    (``factor_shapes_for``) over the encoder's Linears (``blocks.{i}.attn.{q,k,v,proj}`` D×D,
    ``blocks.{i}.mlp.fc1`` D→hidden, ``fc2`` hidden→D). For ``base`` with ``qv``: LoRA r=8 →
    294,912; KronA 24×24⊗32×32 → 38,400.

    Args:
        config: a :class:`~geohsi.models.spectralgpt.SpectralGPTConfig`, its name or its dict.
        method: one of :data:`METHODS`.
        targets: preset or module-name patterns, as for :func:`apply_adapter`.
        num_classes: 0 counts the adapters only; C > 0 adds the classification head (LayerNorm + Linear,
            or the MLP head when ``head_hidden`` > 0).
        head_hidden: the head's hidden width (0 = single Linear).
        train_norms: add the encoder's LayerNorms (two per block).
        **cfg: the method's options, as for :func:`apply_adapter`.

    Returns:
        The parameter count. ``full`` is the whole model, ``linear`` the head only.

    Raises:
        UsageError: unknown method, preset, option or config.

    .. versionadded:: 0.1
    """
    from geohsi.models import count_parameters, resolve_model_config

    if method not in ADAPTER_CONFIGS:
        adapter_config_for(method)  # the one-line refusal of an unknown method
    c = resolve_model_config(config)
    if method == "full":
        return count_parameters(c, num_classes, head_hidden)
    adapter = adapter_config_for(method, cfg)
    d, hd = c.embed_dim, c.mlp_hidden
    head = (count_parameters(c, num_classes, head_hidden) - count_parameters(c)) if num_classes else 0
    norms = c.depth * 2 * 2 * d if train_norms else 0
    if method == "linear":
        return head + norms
    patterns = resolve_targets(targets)
    cls = LAYER_CLASSES[method]
    kwargs = adapter.layer_kwargs()
    shapes = {"attn.q": (d, d), "attn.k": (d, d), "attn.v": (d, d), "attn.proj": (d, d), "mlp.fc1": (d, hd), "mlp.fc2": (hd, d)}
    total = 0
    for i in range(c.depth):
        for leaf, (fin, fout) in shapes.items():
            if name_matches(f"encoder.blocks.{i}.{leaf}", patterns):
                for shape in cls.factor_shapes_for(fin, fout, **kwargs).values():
                    n = 1
                    for v in shape:
                        n *= v
                    total += n
    return total + head + norms


__all__ = [
    "METHODS",
    "count_adapter_parameters",
    "PRESETS",
    "AdapterSummary",
    "adapter_config",
    "adapter_layers",
    "adapter_summary",
    "apply_adapter",
    "describe_adapter",
    "merge_adapter",
    "name_matches",
    "resolve_targets",
    "select_targets",
    "trainable_parameter_names",
    "unmerge_adapter",
]
