"""``geohsi pretrain``: masked-autoencoder pretraining of a SpectralGPT backbone on unlabelled scenes."""

from __future__ import annotations

from pathlib import Path

import click

from geohsi.cli.devices import devices_option, on_devices
from geohsi.cli.paths import PATH_OR_URL


@click.command("pretrain")
@click.argument("scenes", nargs=-1, required=True)
@click.option("--out", type=PATH_OR_URL, required=True, help="Output weights NAME.safetensors (NAME.json and figures beside it).")
@click.option("--model", default="small", show_default=True, help="Encoder config: tiny, small or base.")
@click.option(
    "--spectral",
    type=click.Choice(["pca", "s2"]),
    default="pca",
    show_default=True,
    help="Front end fitted per scene: PCA to 12 channels or Sentinel-2 resampling.",
)
@click.option(
    "--window",
    type=int,
    default=15,
    show_default=True,
    help="Window edge around each sampled pixel, odd (resized to 32 px, as geohsi train does).",
)
@click.option(
    "--epochs", type=float, default=None, help="Passes over the pooled valid pixels [default: 5 when --steps is not given]."
)
@click.option("--steps", type=int, default=None, help="Optimisation steps (instead of --epochs).")
@click.option("--batch-size", type=int, default=256, show_default=True, help="Windows per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (AdamW, warm-up then cosine).")
@click.option(
    "--mask-ratio", type=float, default=0.9, show_default=True, help="Share of tubelets masked per window (SpectralGPT: 0.9)."
)
@click.option("--norm-pix-loss/--no-norm-pix-loss", default=True, show_default=True, help="Standardise each target tubelet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of init, sampling, augmentation and masks.")
@click.option("--precision", type=click.Choice(["bf16", "fp32"]), default="bf16", show_default=True, help="Autocast precision.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Training device.")
@devices_option
@click.option("--resume", is_flag=True, help="Continue an interrupted run with the same --out and options.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pretrain(
    scenes: tuple[str, ...],
    out: Path,
    model: str,
    spectral: str,
    window: int,
    batch_size: int,
    lr: float,
    mask_ratio: float,
    norm_pix_loss: bool,
    seed: int,
    precision: str,
    device: str,
    epochs: float | None,
    steps: int | None,
    devices: int | None,
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Pretrain a SpectralGPT encoder by masked autoencoding on the unlabelled pixels of SCENES.

    Each SCENE is a store made by 'geohsi ingest' or a dataset name from 'geohsi datasets list'
    (fetched and ingested first). Labels are never read. Writes the encoder in the official key
    layout; use it with 'geohsi train --backbone NAME.safetensors --model MODEL'.

    \b
    Examples:
      geohsi pretrain ip.zarr potsdam.zarr --model small --out backbone.safetensors --steps 2000
      geohsi pretrain indian_pines enmap_potsdam aviris_ng jasper_ridge --model small \\
          --out spectralgpt_small_geohsi.safetensors --steps 1200 --seed 0
      geohsi pretrain archive/*.zarr --model base --out base.safetensors --steps 20000 --devices 4   # 4 GPUs, DDP
    """
    import os

    from geohsi.training.pretraining import pretrain as pretrain_backbone

    if on_devices(devices, device, batch_size):
        return
    path = pretrain_backbone(
        list(scenes),
        out=out,
        model=model,
        spectral=spectral,
        window=window,
        batch_size=batch_size,
        lr=lr,
        mask_ratio=mask_ratio,
        norm_pix_loss=norm_pix_loss,
        seed=seed,
        precision=precision,
        device=device,
        epochs=epochs,
        steps=steps,
        resume=resume,
        overwrite=overwrite,
        progress=not quiet,
    )
    if os.environ.get("RANK", "0") == "0":
        click.echo(str(path))
