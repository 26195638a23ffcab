"""``geohsi train``: fine-tune SpectralGPT with a PEFT adapter on labelled scenes → model bundle."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.devices import devices_option, on_devices
from geohsi.cli.paths import PATH_OR_URL
from geohsi.cli.scenes import label_options, label_source, scene_options, selected_scenes
from geohsi.training.config import ADAPTERS, HEAD_NAMES


@click.command("train")
@click.argument("scenes", nargs=-1, metavar="SCENE...")
@scene_options("Train on")
@label_options
@click.option("--adapter", type=click.Choice(ADAPTERS), default=None, help="PEFT method or baseline [default: krona+].")
@click.option(
    "--backbone",
    default=None,
    help='Backbone weights (.safetensors or official .pth), or "random" to train from scratch [default: geohsi\'s default backbone].',
)
@click.option(
    "--model", default=None, help="Backbone config: tiny, small or base [default: small, with geohsi's pretrained backbone]."
)
@click.option(
    "--spectral",
    type=click.Choice(["pca", "s2", "lda"]),
    default=None,
    help="PCA to 12 channels, Sentinel-2 resampling, or lda: the training pixels' discriminant directions "
    "(classes − 1 of them, at most 6), then principal components [default: pca].",
)
@click.option("--window", type=int, default=None, help="Window edge around each pixel, odd [default: 15].")
@click.option(
    "--head",
    type=click.Choice(HEAD_NAMES),
    default=None,
    help="dense: segmentation of whole tiles, maps ≈300× faster (150 epochs, 8 tiles, lr 2e-3, the results table's protocol); "
    "patch: one window per pixel, the paper's protocol (30 epochs, 64 windows, lr 1e-3) [default: dense].",
)
@click.option(
    "--input-size",
    type=int,
    default=None,
    help="Model input edge in pixels, a multiple of 8: dense tiles (training crops and map tiles; 16 learns less of the "
    "training scenes' layout, see docs/results.md), or what patch windows are resized to [default: 32].",
)
@click.option(
    "--tile-overlap", type=int, default=None, help="Dense mode: pixels shared by neighbouring inference tiles [default: tile/4]."
)
@click.option(
    "--context-dropout",
    type=float,
    default=None,
    help="Dense mode, training only: share of tiles whose context path is dropped, so pixels are also labelled from their "
    "own spectra; raises average accuracy on scenes the model never saw (docs/results.md) [default: 0].",
)
@click.option(
    "--split",
    default=None,
    help="per-class:N | fraction:F | blocks:S | scenes:F (whole scenes held out; F = training share) [default: per-class:10].",
)
@click.option("--epochs", type=int, default=None, help="Maximum epochs [default: 150 dense / 30 patch].")
@click.option("--batch-size", type=int, default=None, help="Tiles (dense) or windows (patch) per step [default: 8 / 64].")
@click.option(
    "--lr", type=float, default=None, help="Learning rate [default: 2e-3 dense (5e-4 with --adapter full) / 1e-3 patch]."
)
@click.option("--lr-ratio", type=float, default=None, help="λ of LoRA+/KronA+ [default: 16].")
@click.option("--rank", type=int, default=None, help="LoRA/LoKr rank [default: 8].")
@click.option("--seed", type=int, default=None, help="Seed of split, init, shuffling, augmentation [default: 0].")
@click.option("--precision", type=click.Choice(["bf16", "fp32"]), default=None, help="Autocast precision [default: bf16].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Training device [default: auto].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience on val OA, 0 = off [default: 0].")
@click.option(
    "--val-fraction",
    type=float,
    default=None,
    help="Share of the training side held out for validation (whole scenes under scenes:F); 0 trains on all of it "
    "[default: 0.1].",
)
@click.option(
    "--sensor-augment",
    type=int,
    default=None,
    help="With --spectral s2: also train on the scene as N random imaging spectrometers see it, so the bundle maps "
    "other sensors as well [default: 0].",
)
@click.option(
    "--loader",
    type=click.Choice(["auto", "memory", "stream"]),
    default=None,
    help="auto: scenes in memory when their model input fits 512 MB, else streamed chunk by chunk by 2 loader "
    "workers [default: auto].",
)
@click.option(
    "--config", "config_file", type=PATH_OR_URL, default=None, help="YAML/TOML file of these options; flags override it."
)
@click.option(
    "--out", type=PATH_OR_URL, default=None, help="Bundle directory [default: runs/<timestamp>-<adapter>, runs/latest → it]."
)
@devices_option
@click.option("--resume", is_flag=True, help="Continue an interrupted run with the same --out from its last epoch.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    scenes: tuple[str, ...],
    from_list: Path | None,
    stac_url: str | None,
    collection: str | None,
    bbox: str | None,
    when: str | None,
    cql2: str | None,
    max_items: int,
    labels: str | None,
    label_field: str | None,
    layer: str | None,
    all_touched: bool,
    class_names: str | None,
    adapter: str | None,
    backbone: str | None,
    model: str | None,
    spectral: str | None,
    window: int | None,
    head: str | None,
    input_size: int | None,
    tile_overlap: int | None,
    context_dropout: float | None,
    split: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    lr_ratio: float | None,
    rank: int | None,
    seed: int | None,
    precision: str | None,
    device: str | None,
    patience: int | None,
    val_fraction: float | None,
    sensor_augment: int | None,
    loader: str | None,
    config_file: Path | None,
    out: Path | None,
    devices: int | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Fine-tune SpectralGPT on the labelled pixels of one or many SCENEs and write a model bundle.

    A SCENE is a scene store or any file 'geohsi ingest' reads, read in place; globs, --from-list
    and --stac select many. Labels come from each store, from label rasters paired with the scenes
    by file stem (--labels 'labels/*.tif'), or from one vector file of polygons or points in any CRS
    (--labels fields.gpkg --label-field crop), rasterised onto each scene's grid. The default head is
    dense (segmentation of tiles: fast maps); --head patch runs the paper's per-pixel protocol with
    its own defaults (30 epochs, 64 windows, lr 1e-3).

    \b
    Examples:
      geohsi train ip.zarr --adapter krona+ --split fraction:0.1
      geohsi train 'images/*.tif' --labels 'labels/*.tif' --split scenes:0.7   # tiles as they come
      geohsi train 'images/*.tif' --labels fields.gpkg --label-field crop --split blocks:32
      geohsi train 'images/*.tif' --labels 'labels/*.tif' --spectral lda --split scenes:0.7   # discriminant channels
      geohsi train ip.zarr --head patch --adapter krona+ --split per-class:10   # the paper's protocol
      geohsi train enmap.zarr --spectral s2 --sensor-augment 8   # a bundle for other sensors too
      geohsi train 'scenes/*.tif' --labels fields.gpkg --label-field crop --devices 4   # 4 GPUs, DDP
    """
    from geohsi.training.config import resolve_train_config
    from geohsi.training.finetune import train as train_bundle

    config = resolve_train_config(
        config_file,
        adapter=adapter,
        backbone=backbone,
        model=model,
        spectral=spectral,
        window=window,
        head=head,
        input_size=input_size,
        tile_overlap=tile_overlap,
        context_dropout=context_dropout,
        split=split,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_ratio=lr_ratio,
        rank=rank,
        seed=seed,
        precision=precision,
        device=device,
        patience=patience,
        val_fraction=val_fraction,
        sensor_augment=sensor_augment,
        loader=loader,
    )
    if on_devices(devices, config.run.device, config.run.batch_size):
        return
    sources = selected_scenes(scenes, from_list, stac_url, collection, bbox, when, cql2, max_items)
    source = label_source(labels, label_field, layer, all_touched, class_names)
    train_bundle(sources, config, labels=source, out=out, overwrite=overwrite, resume=resume, progress=not quiet)
