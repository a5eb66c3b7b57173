"""Training step: determinism, resume after a kill, logged terms, NaN guard, outputs."""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import mst_config, train_cli_args
from mmjsd.core.config import TrainConfig
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.core.runtime import last_batch_rows, split_device
from mmjsd.data.hdf5 import MST_SPEC, read_split
from mmjsd.data.readers import load_split
from mmjsd.models import MultimodalVAE, build_model
from mmjsd.train import (
    CHECKPOINT_VERSION,
    RunSpec,
    TrainingStep,
    clip_gradient_norm,
    load_checkpoint,
    overflowed_adam_moments,
    train,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> TrainConfig:
    """:func:`helpers.mst_config` without subspaces, shrunk to train in seconds: 2
    epochs of batches of 64, 8 latent dimensions."""
    return mst_config(
        False, **{"epochs": 2, "lr": 1.0e-3, "batch_size": 64, "shared_dim": 8, "log_every": 5, **overrides}
    )


def spec_for(mst_h5: Path, variant: str = "mmjsd", seed: int = 0, **overrides) -> RunSpec:
    return RunSpec("mnist_svhn_text", variant, seed, tiny_config(**overrides), mst_h5, sha256_file(mst_h5), "corrected")


def run(spec: RunSpec, root: Path, **kwargs) -> tuple[list[dict], dict]:
    rows = train(spec, root / "run", root / "ckpt" / "last.pt", torch.device("cpu"), progress=False, **kwargs)
    return rows, torch.load(root / "run" / "model.pt", weights_only=False)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_identical_weights_and_another_seed_does_not(mst_h5, tmp_path):
    rows_a, weights_a = run(spec_for(mst_h5), tmp_path / "a")
    rows_b, weights_b = run(spec_for(mst_h5), tmp_path / "b")
    assert_same_weights(weights_a, weights_b)
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    _, weights_c = run(spec_for(mst_h5, seed=1), tmp_path / "c")
    assert any(not torch.equal(weights_a[k], weights_c[k]) for k in weights_a)


def test_resume_after_interruption_equals_uninterrupted(mst_h5, tmp_path):
    spec = spec_for(mst_h5, epochs=3)
    _, uninterrupted = run(spec, tmp_path / "full")

    def crash_after_first_epoch(epoch: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after the epoch-1 checkpoint")

    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "resumed", on_epoch_end=crash_after_first_epoch)
    assert (tmp_path / "resumed/ckpt/last.pt").is_file() and not (tmp_path / "resumed/run/model.pt").exists()
    rows, resumed = run(spec, tmp_path / "resumed")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert_same_weights(uninterrupted, resumed)
    assert not (tmp_path / "resumed/ckpt/last.pt").exists()  # removed once the outputs are written


def test_a_kept_final_checkpoint_rewrites_the_same_outputs_without_training(mst_h5, tmp_path, caplog):
    """What a finished member of a resubmitted SLURM pack does: its rerun resumes after the last epoch."""
    spec = spec_for(mst_h5)
    rows, weights = run(spec, tmp_path, keep_final_checkpoint=True)
    checkpoint = tmp_path / "ckpt/last.pt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    log_csv = (tmp_path / "run/train_log.csv").read_text()
    (tmp_path / "run/model.pt").unlink()  # Snakemake removes a job's outputs before it runs again
    epochs_trained = []
    with caplog.at_level("INFO", logger="mmjsd.train"):
        rerun_rows, rerun_weights = run(spec, tmp_path, on_epoch_end=epochs_trained.append)
    assert epochs_trained == [] and rerun_rows == rows
    assert "after epoch 2" in caplog.text
    assert_same_weights(weights, rerun_weights)
    assert (tmp_path / "run/train_log.csv").read_text() == log_csv
    assert not checkpoint.exists()  # this time the outputs were written without keeping it
    # the recorded wall time still covers the training epochs, though this process trained none
    wall_time = json.loads((tmp_path / "run/config.json").read_text())["wall_time_s"]
    assert wall_time >= sum(row["wall_time_s"] for row in rows) > 0


def test_a_checkpoint_of_other_code_is_not_resumed(mst_h5, tmp_path):
    spec = spec_for(mst_h5)
    run(spec, tmp_path, keep_final_checkpoint=True)
    checkpoint = tmp_path / "ckpt/last.pt"
    assert load_checkpoint(checkpoint, spec, torch.device("cpu")) is not None
    edited = dataclasses.replace(spec, code_version="another-hash")
    assert load_checkpoint(checkpoint, edited, torch.device("cpu")) is None


def test_packed_datasets_keep_their_final_checkpoint(mst_h5, tmp_path, monkeypatch):
    """The workflow lists the datasets whose training it packs in MMJSD_PACKED_DATASETS; the step keeps their final
    checkpoint without being told on the command line."""
    from mmjsd.train import main

    def train_cli(out: Path) -> Path:
        main(train_cli_args(spec_for(mst_h5, epochs=1).config, mst_h5, out / "run", out / "last.pt"))
        return out / "last.pt"

    monkeypatch.setenv("MMJSD_PACKED_DATASETS", "celeba")
    assert not train_cli(tmp_path / "celeba_packed").exists()
    monkeypatch.setenv("MMJSD_PACKED_DATASETS", "celeba,mnist_svhn_text")
    assert train_cli(tmp_path / "mst_packed").is_file()


def test_killed_process_resumes_from_its_checkpoint(mst_h5, tmp_path):
    spec = spec_for(mst_h5, epochs=4)
    _, uninterrupted = run(spec, tmp_path / "full")
    checkpoint = tmp_path / "killed/ckpt/last.pt"
    cmd = [
        sys.executable,
        "-m",
        "mmjsd.train",
        *train_cli_args(spec.config, mst_h5, tmp_path / "killed/run", checkpoint),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.is_file() and not (tmp_path / "killed/run/model.pt").exists()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = torch.load(tmp_path / "killed/run/model.pt", weights_only=False)["state_dict"]
    assert_same_weights(uninterrupted, resumed)


def test_checkpoint_of_other_settings_is_not_resumed(mst_h5, tmp_path):
    spec = spec_for(mst_h5)
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path, on_epoch_end=lambda epoch: (_ for _ in ()).throw(KeyboardInterrupt()))
    changed = spec_for(mst_h5, lr=2.0e-3)
    rows, _ = run(changed, tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]  # started from scratch


class RunsCodeWhenUnpickled:
    """What a checkpoint from elsewhere could hold: unpickling it calls ``Path.touch(marker)``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_holding_an_arbitrary_object_is_refused_without_running_it(mst_h5, tmp_path):
    spec = spec_for(mst_h5)
    marker = tmp_path / "code_ran"
    checkpoint = tmp_path / "last.pt"
    torch.save(
        {"version": CHECKPOINT_VERSION, "identity": spec.identity(), "payload": RunsCodeWhenUnpickled(marker)},
        checkpoint,
    )
    assert load_checkpoint(checkpoint, spec, torch.device("cpu")) is None
    assert not marker.exists()
    torch.load(checkpoint, weights_only=False)  # what the resume used to do
    assert marker.exists()


def test_loss_decreases_and_logged_terms_add_up(mst_h5, tmp_path):
    for variant, style in (("mopoe", 0), ("mvae-ms", 2)):
        cfg_style = {"mnist": style, "svhn": style, "text": style}
        rows, _ = run(spec_for(mst_h5, variant=variant, epochs=4, style_dim=cfg_style), tmp_path / variant)
        assert rows[-1]["loss"] < rows[0]["loss"]
        weights = build_model("mnist_svhn_text", variant, tiny_config(style_dim=cfg_style)).term_weights()
        for row in rows:
            assert row["loss"] == pytest.approx(sum(w * row[name] for name, w in weights.items()), rel=1e-4)


def test_outputs_record_the_run(mst_h5, tmp_path):
    spec = spec_for(mst_h5)
    run(spec, tmp_path)
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["train_config"] == dataclasses.asdict(spec.config)
    assert config["data"]["sha256"] == sha256_file(mst_h5) and config["versions"]["torch"] == torch.__version__
    with open(tmp_path / "run/train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"loss", "rec/mnist", "rec/svhn", "rec/text", "kl/content", "wall_time_s"} <= set(rows[0])
    model = torch.load(tmp_path / "run/model.pt", weights_only=False)
    assert model["variant"] == "mmjsd" and model["epoch"] == 2
    assert config["protocol"] == model["protocol"] == "corrected"


def test_a_reference_exact_run_refuses_a_corrected_switch(mst_h5):
    corrected = dataclasses.replace(
        tiny_config(), departures={"text_likelihood": "corrected", "dynamic_prior_epsilon": "corrected"}
    )
    with pytest.raises(
        UserError, match="reference-exact job must run every departure at reference, but 'text_likelihood'"
    ):
        RunSpec("mnist_svhn_text", "mmjsd", 0, corrected, mst_h5, sha256_file(mst_h5), "reference-exact")
    exact = dataclasses.replace(corrected, departures=dict.fromkeys(corrected.departures, "reference"))
    assert (
        RunSpec("mnist_svhn_text", "mmjsd", 0, exact, mst_h5, sha256_file(mst_h5), "reference-exact").protocol
        == "reference-exact"
    )


def test_nan_loss_stops_with_epoch_step_and_term(mst_h5, tmp_path, monkeypatch):
    original = MultimodalVAE.forward_loss
    calls = {"n": 0}

    def poisoned(self, batch):
        loss, terms = original(self, batch)
        calls["n"] += 1
        if calls["n"] == poison_at:
            terms = {**terms, "rec/svhn": terms["rec/svhn"] * float("nan")}
            loss = loss * float("nan")
        return loss, terms

    from mmjsd.data.readers import load_split

    steps_per_epoch = len(load_split("mnist_svhn_text", mst_h5, "train")) // 64
    poison_at = steps_per_epoch + 3  # epoch 2, step index 2 (0-based)
    monkeypatch.setattr(MultimodalVAE, "forward_loss", poisoned)
    with pytest.raises(
        UserError,
        match=r"non-finite loss at epoch 2, step 2 \(terms: loss, rec/svhn\).*last good checkpoint .*last\.pt is kept",
    ):
        run(spec_for(mst_h5), tmp_path)
    state = torch.load(tmp_path / "ckpt/last.pt", weights_only=False)
    assert state["epoch"] == 1 and not (tmp_path / "run/model.pt").exists()


def test_gradient_clipping_matches_the_float64_closed_form_also_where_float32_norms_overflow():
    parameters = [
        torch.nn.Parameter(torch.zeros(3)),
        torch.nn.Parameter(torch.zeros(2, 2)),
        torch.nn.Parameter(torch.zeros(1)),
    ]
    grads = [torch.tensor([3e25, -4e25, 0.0]), torch.tensor([[1e25, 0.0], [0.0, 2e25]])]
    assert torch.isinf(torch.nn.utils.get_total_norm(grads))  # what torch's own clipping would divide by
    with_grad = parameters[: len(grads)]  # the last parameter has no gradient
    for p, g in zip(with_grad, grads, strict=True):
        p.grad = g.clone()
    clip_gradient_norm(parameters, 10.0)
    norm = sum(float(g.double().square().sum()) for g in grads) ** 0.5  # 5.477e25, computed in float64
    for p, g in zip(with_grad, grads, strict=True):
        torch.testing.assert_close(p.grad, (g.double() * (10.0 / norm)).float())
    small = torch.tensor([0.3, 0.4, 0.0])
    parameters[0].grad = small.clone()
    parameters[1].grad = torch.zeros(2, 2)
    clip_gradient_norm(parameters, 10.0)
    assert torch.equal(parameters[0].grad, small)  # within the bound: unchanged


@pytest.mark.parametrize("switch", ["corrected", "reference"])
def test_gradient_clipping_switch(switch, mst_h5):
    """corrected clips to grad_clip_norm; reference (the official optimiser) leaves the gradients as they are."""
    cfg = tiny_config(grad_clip_norm=1e-3, departures={"gradient_clipping": switch})
    torch.manual_seed(0)
    model = build_model("mnist_svhn_text", "mmjsd", cfg)
    step = TrainingStep(model, cfg, torch.device("cpu"))
    data = load_split("mnist_svhn_text", mst_h5, "train")
    batch, _ = data.batch(torch.arange(32))
    step(batch)  # gradients stay on the parameters until the next step
    norm = float(
        torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad, dtype=torch.float64) for p in model.parameters()])
        )
    )
    if switch == "corrected":
        assert norm == pytest.approx(1e-3, rel=1e-4)
    else:
        assert norm > 1.0  # an unclipped first-step gradient of this loss is far above 1e-3


def test_last_batch_rows_are_the_last_batch_training_used(mst_h5, tmp_path, monkeypatch):
    """The official probe protocol refits on the last training batch:
    last_batch_rows must name the rows train() fed last."""
    seen = []
    original = TrainingStep.__call__

    def recording_step(self, batch):
        seen.append({m: x.clone() for m, x in batch.items()})
        return original(self, batch)

    monkeypatch.setattr(TrainingStep, "__call__", recording_step)
    spec = spec_for(mst_h5, epochs=2, batch_size=48)
    train(spec, tmp_path / "run", tmp_path / "ckpt" / "last.pt", torch.device("cpu"), progress=False)
    data = load_split("mnist_svhn_text", mst_h5, "train")
    data.redraw_text(spec.seed, 2)  # the text offsets of the final epoch
    expected, _ = data.batch(last_batch_rows(len(data), 48, spec.seed, 2))
    assert len(seen) == 2 * (len(data) // 48)
    assert all(torch.equal(seen[-1][m], expected[m]) for m in expected)


def test_overflowed_adam_moments_are_named():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    names = {p: name for name, p in model.named_parameters()}
    assert overflowed_adam_moments(optimizer, names) == []  # no state before the first step
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    model[1].weight.grad = torch.full_like(model[1].weight, 1e25)  # (1 - beta2) g² overflows float32
    optimizer.step()
    assert overflowed_adam_moments(optimizer, names) == ["1.weight"]
    before = model[1].weight.detach().clone()
    for _ in range(3):
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        optimizer.step()
    assert torch.equal(model[1].weight, before)  # why it is an error: the parameter never moves again


def test_adam_overflow_stops_training_and_gradient_clipping_prevents_it(mst_h5, tmp_path, monkeypatch):
    """A loss scaled by 1e22 stays finite but its gradients square to inf in Adam's second moment."""
    original = MultimodalVAE.forward_loss

    def huge(self, batch):
        loss, terms = original(self, batch)
        return loss * 1e22, terms

    monkeypatch.setattr(MultimodalVAE, "forward_loss", huge)
    with pytest.raises(
        UserError,
        match=r"Adam's second-moment estimate overflowed to inf for \d+ parameter tensors \(first: .+\) in epoch 1.*"
        r"no checkpoint was written yet\. Set training\.mnist_svhn_text\.defaults\.grad_clip_norm",
    ):
        run(spec_for(mst_h5, epochs=1), tmp_path / "unclipped")
    assert not (tmp_path / "unclipped/ckpt/last.pt").exists() and not (tmp_path / "unclipped/run/model.pt").exists()
    rows, weights = run(spec_for(mst_h5, epochs=1, grad_clip_norm=100.0), tmp_path / "clipped")
    assert rows[0]["epoch"] == 1 and all(torch.isfinite(w).all() for w in weights.values())


def test_training_split_bytes_count_pixels_text_and_int64_indices(mst_h5):
    arrays = read_split(mst_h5, MST_SPEC, "train")
    pairs = len(arrays["pair_label"])
    expected = arrays["mnist_images"].size + arrays["svhn_images"].size + arrays["pair_text"].nbytes + 3 * 8 * pairs
    assert load_split("mnist_svhn_text", mst_h5, "train").nbytes == expected


@pytest.mark.parametrize(
    ("device", "free_bytes", "kept_on"),
    [("cpu", None, "cpu"), ("cuda", 2 * 10**9, "cuda"), ("cuda", 2 * 10**9 - 1, "cpu"), ("cuda", 80 * 2**30, "cuda")],
)
def test_training_split_stays_on_the_host_when_it_needs_over_half_the_free_gpu_memory(device, free_bytes, kept_on):
    assert split_device(10**9, torch.device(device), free_bytes) == torch.device(kept_on)


#: The Python-level ways of reading a tensor's value on the host; on a GPU each one waits for the queued work.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


def test_host_reads_follow_the_log_points_not_the_steps(mst_h5, tmp_path, monkeypatch):
    """The loop keeps its sums and non-finite checks on the device: doubling the steps of an epoch adds no host read,
    and every extra log point (``log_every``) adds at most two. Reads inside C++ operators are not seen here; on a GPU,
    ``torch.cuda.set_sync_debug_mode("warn")`` shows those."""
    reads = collections.Counter()

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            reads[name] += 1
            return original(self, *args, **kwargs)

        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))

    def host_reads(batch_size: int, log_every: int, root: str) -> tuple[int, int]:
        reads.clear()
        rows, _ = run(spec_for(mst_h5, epochs=1, batch_size=batch_size, log_every=log_every), tmp_path / root)
        return rows[0]["steps"], sum(reads.values())

    steps, once = host_reads(64, 10_000, "a")
    doubled_steps, doubled = host_reads(32, 10_000, "b")
    assert doubled_steps == 2 * steps and doubled == once
    _, logged = host_reads(32, 5, "c")
    extra_log_points = -(-doubled_steps // 5) - 1
    assert 0 < logged - doubled <= 2 * extra_log_points
