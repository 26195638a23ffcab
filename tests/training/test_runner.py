"""The one training runner: schedule, optimisation step, checkpoint/resume (exact), option check on resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from geohsi.errors import UsageError
from geohsi.training.runner import CHECKPOINT_NAME, Runner, check_resumable, lr_lambda


def test_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    f = lr_lambda(total_steps=10, warmup_steps=2)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0) and f(10) == pytest.approx(0.0)
    assert f(6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def _run(work, steps: int, *, resume_at: int | None = None) -> dict[str, torch.Tensor]:
    """Train a tiny model with dropout (uses the global RNG) for ``steps`` steps, optionally stopping and resuming."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 2))
    model[0].weight.requires_grad_(False)  # a frozen layer, as a backbone under an adapter
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    runner = Runner(model, opt, total_steps=steps, warmup_steps=1, work=work, config_json=json.dumps({"a": 1}), grad_clip=0.5)
    start = 0
    if resume_at is not None:
        start, extra = runner.resume()
        assert start == resume_at and extra == {"note": "x"}
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(16, 4, generator=g) for _ in range(steps)]
    for step in range(start, steps):
        model.train()
        loss = model(xs[step]).pow(2).mean()
        runner.step(loss)
        runner.save(step + 1, note="x")
        if resume_at is None and step + 1 == 3 and work.name == "interrupted":
            break
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path) -> None:
    straight = _run(tmp_path / "straight", 6)
    (tmp_path / "interrupted").mkdir()
    _run(tmp_path / "interrupted", 6)  # stops after step 3, checkpoint written
    resumed = _run(tmp_path / "interrupted", 6, resume_at=3)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_resume_refuses_a_checkpoint_made_with_other_options(tmp_path) -> None:
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Runner(model, opt, total_steps=2, warmup_steps=0, work=tmp_path, config_json="A").save(1)
    with pytest.raises(UsageError, match="made with other options"):
        Runner(model, opt, total_steps=2, warmup_steps=0, work=tmp_path, config_json="B").resume()
    check_resumable(tmp_path / "out", tmp_path)
    (tmp_path / CHECKPOINT_NAME).unlink()
    with pytest.raises(UsageError, match="nothing to resume"):
        check_resumable(tmp_path / "out", tmp_path)


def test_trainable_checkpoints_hold_only_what_trains(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    runner = Runner(
        model, torch.optim.SGD(model[1].parameters(), lr=0.1), total_steps=1, warmup_steps=0, work=tmp_path, config_json="c"
    )
    assert set(runner.model_state()) == {"1.weight", "1.bias"}
    full = Runner(
        model,
        torch.optim.SGD(model[1].parameters(), lr=0.1),
        total_steps=1,
        warmup_steps=0,
        work=tmp_path,
        config_json="c",
        state="full",
    )
    assert set(full.model_state()) == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_a_resumed_run_carries_the_seconds_its_earlier_sessions_trained(tmp_path) -> None:
    """``wall_seconds`` of a resumed train or pretrain had been its last session's only."""
    import time

    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    first = Runner(model, opt, total_steps=2, warmup_steps=0, work=tmp_path, config_json="A")
    assert first.resumed_seconds == 0.0
    time.sleep(0.3)
    first.save(1)
    second = Runner(model, opt, total_steps=2, warmup_steps=0, work=tmp_path, config_json="A")
    second.resume()
    assert second.resumed_seconds >= 0.3
    time.sleep(0.3)
    second.save(2)  # a third session counts both
    third = Runner(model, opt, total_steps=2, warmup_steps=0, work=tmp_path, config_json="A")
    third.resume()
    assert third.resumed_seconds >= second.resumed_seconds + 0.3


def test_a_refused_resume_names_what_differs() -> None:
    from geohsi.training.runner import _differences

    assert _differences('{"lr": 0.001, "seed": 1}', '{"lr": 0.0005, "seed": 1}') == "lr 0.001 → 0.0005"
    assert _differences('{"a": null, "b": 1}', '{"b": 1}') == "a None → unset"  # had been "" (null = missing)
    assert _differences('{"b": 1}', '{"b": 1.0}') == "b 1 → 1.0"
    assert _differences('{"data": {"scenes": [1]}}', '{"data": {"scenes": [2]}}') == "scenes"
    assert _differences("not json", "{}") == "a checkpoint of another version"
