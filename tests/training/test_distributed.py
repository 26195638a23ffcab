"""DistributedDataParallel under torchrun: the global batch shared by ranks, one step on 2 gloo ranks equal to one
step of one process, the refusals, and (slow) whole runs launched with --devices, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from geohsi.errors import UsageError
from geohsi.training.distributed import EpochSampler, Ranks, check_devices, local_batch_size, shard
from tests.conftest import run_cli


@pytest.mark.parametrize("world", [1, 2, 3])
def test_global_batches_hold_the_same_samples_whatever_the_ranks(world: int) -> None:
    order = np.random.default_rng(0).permutation(23)
    b = 6 // world if 6 % world == 0 else 2
    big = b * world
    shards = [shard(order, Ranks(r, world)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank takes as many steps
    padded = np.resize(order, len(shards[0]) * world)  # the order, wrapped round to a multiple of the ranks
    for k in range(-(-len(shards[0]) // b)):
        got = sorted(np.concatenate([s[k * b : (k + 1) * b] for s in shards]).tolist())
        assert got == sorted(padded[k * big : (k + 1) * big].tolist())
    assert sorted(set(np.concatenate(shards).tolist())) == sorted(order.tolist())
    sampler = EpochSampler(lambda e: np.random.default_rng([0, e]).permutation(23), lambda e: 23, Ranks(0, world))
    sampler.set_epoch(3)
    assert list(sampler) == shard(np.random.default_rng([0, 3]).permutation(23), Ranks(0, world)).tolist()
    assert len(sampler) == len(shards[0])


def test_batches_and_devices_the_ranks_cannot_share_are_refused() -> None:
    assert local_batch_size(8, Ranks(0, 2)) == 4
    with pytest.raises(
        UsageError, match=r"--batch-size 9 cannot be shared by 2 ranks; give a multiple of 2 \(the global batch, e.g. 8\)"
    ):
        local_batch_size(9, Ranks(1, 2))
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match=r"--devices 2 asks for 2 GPUs but this machine has no GPU; use --device cpu"):
            check_devices(2, "cuda")
        check_devices(2, "cpu")  # gloo ranks on the CPU
    with pytest.raises(UsageError, match="--devices must be at least 1"):
        check_devices(0, "cpu")


def _model_and_runner(tmp: Path):
    from geohsi.adapters import apply_adapter, method_options, param_groups
    from geohsi.models import build_classifier, resolve_model_config
    from geohsi.training.runner import Runner, seed_init

    seed_init(0)
    model = build_classifier(resolve_model_config("tiny", img_size=16, num_bands=12), 5)
    apply_adapter(model, "krona+", "qv", **method_options("krona+", rank=4, alpha=None, lr_ratio=16.0))
    opt = torch.optim.AdamW(param_groups(model, 1e-2, weight_decay=0.01))
    return model, Runner(model, opt, total_steps=10, warmup_steps=0, work=tmp, config_json="{}", grad_clip=1.0)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(8, 12, 16, 16, generator=g), torch.randint(0, 5, (8,), generator=g)


def _rank_step(rank: int, world: int, init: str, out: str) -> None:
    """One step of rank ``rank`` on its share of the batch (torch.multiprocessing.spawn target)."""
    import torch.nn.functional as F

    from geohsi.training.distributed import wrap

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model, runner = _model_and_runner(Path(out).parent / f"w{rank}")
    net = wrap(model, Ranks(rank, world), torch.device("cpu"))
    x, y = _batch()
    b = len(x) // world
    runner.step(F.cross_entropy(net(x[rank * b : (rank + 1) * b]), y[rank * b : (rank + 1) * b]))
    if rank == 0:
        torch.save(runner.model_state(), out)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def test_one_step_on_two_gloo_ranks_equals_one_step_of_one_process(tmp_path: Path) -> None:
    """2 ranks × batch 4 and 1 process × batch 8, from the same weights and samples: the same updated adapter and head."""
    import torch.nn.functional as F

    torch.multiprocessing.spawn(_rank_step, args=(2, f"file://{tmp_path / 'rdzv'}", str(tmp_path / "ddp.pt")), nprocs=2)
    model, runner = _model_and_runner(tmp_path / "w")
    before = runner.model_state()
    x, y = _batch()
    runner.step(F.cross_entropy(model(x), y))
    one, two = runner.model_state(), torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert (
        set(one) == set(two)
        and any("adapter" in n or "lora" in n or "krona" in n for n in one)
        and any(n.startswith("head") for n in one)
    )
    for name in one:
        assert not torch.equal(one[name], before[name]), f"{name} did not train"
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)  # float32 sums in another order


# --------------------------------------------------------------------------------------------------- whole runs (slow)


def _oa(bundle: Path) -> float:
    return json.loads((bundle / "metrics.json").read_text())["overall_accuracy"]


@pytest.mark.slow
def test_two_gloo_ranks_train_a_dense_bundle_and_pretrain(ip_scene: Path, tmp_path: Path) -> None:
    common = ["--adapter", "krona+", "--model", "tiny", "--epochs", "4", "--split", "fraction:0.2", "--device", "cpu", "--quiet"]
    singles = []
    for seed in (0, 1, 2):
        r = run_cli("train", ip_scene, *common, "--seed", seed, "--out", tmp_path / f"one{seed}")
        assert r.returncode == 0, r.stderr
        singles.append(_oa(tmp_path / f"one{seed}"))
    r = run_cli("train", ip_scene, *common, "--devices", "2", "--out", tmp_path / "two")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("test OA") == 1  # one writer
    tc = json.loads((tmp_path / "two" / "bundle.json").read_text())["train_config"]
    assert tc["devices"] == 2 and tc["batch_size"] == 8
    spread = max(np.std(singles, ddof=1) * 3, 0.03)
    print(f"single-process OA {singles}, 2 ranks {_oa(tmp_path / 'two'):.4f}")
    assert abs(_oa(tmp_path / "two") - np.mean(singles)) <= spread
    r = run_cli(
        "classify", ip_scene, "--bundle", tmp_path / "two", "--out", tmp_path / "map.zarr", "--workers", "1", "--no-progress"
    )
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "pretrain",
        ip_scene,
        "--model",
        "tiny",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--devices",
        "2",
        "--out",
        tmp_path / "pre.safetensors",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("train", ip_scene, *common, "--backbone", tmp_path / "pre.safetensors", "--out", tmp_path / "from_pre")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_and_resume_completes_it(ip_scene: Path, tmp_path: Path) -> None:
    args = [
        "train",
        str(ip_scene),
        "--adapter",
        "lora",
        "--model",
        "tiny",
        "--head",
        "patch",
        "--epochs",
        "6",
        "--split",
        "fraction:0.3",
    ]
    args += ["--device", "cpu", "--devices", "2", "--quiet", "--out", str(tmp_path / "b")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "geohsi.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    work = tmp_path / ".b.work" / "checkpoint.pt"
    deadline = time.monotonic() + 600
    while not work.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert work.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint"
    ranks = subprocess.run(["pgrep", "-f", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    children = [
        int(p)
        for p in subprocess.run(["pgrep", "-f", "geohsi.cli.main train"], capture_output=True, text=True).stdout.split()
        if int(p) != proc.pid
    ]
    assert children, ranks
    t0 = time.monotonic()
    os.kill(max(children), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    stopped = time.monotonic() - t0
    lines = [x for x in err.splitlines() if x.startswith("geohsi:")]
    assert proc.returncode != 0 and stopped < 60, (proc.returncode, stopped, err)
    assert len(lines) == 1 and re_rank(lines[0]), err
    assert not (tmp_path / "b").exists()  # nothing half-written
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch" in r.stderr and len(json.loads((tmp_path / "b" / "bundle.json").read_text())["metrics"]) > 0


def re_rank(line: str) -> bool:
    import re

    return bool(
        re.search(r"geohsi: error: rank \d of 2 stopped \(signal SIGKILL\); .*rerun the same command with --resume", line)
    )
