"""Step: train one (dataset, variant, seed) multimodal VAE, resumably.

    python -m mmjsd.train --dataset mnist_svhn_text --variant mmjsd --seed 0 --protocol corrected \\
        --hparams '<resolved training config as JSON>' \\
        --data results/datasets/mnist_svhn_text.h5 \\
        --out-dir results/runs/corrected/mnist_svhn_text/mmjsd/seed0 \\
        --checkpoint results/checkpoints/corrected/mnist_svhn_text/mmjsd/seed0/last.pt

Writes ``model.pt``, ``config.json`` (the as-run config) and ``train_log.csv`` (one row per
epoch: every loss term, wall time) into --out-dir. Both JSON and model file record the
protocol (docs/departures.md), which the metric files inherit. After every epoch the full training
state (model, optimiser, RNG, log) goes to --checkpoint, a file Snakemake does not
manage; rerunning after a kill resumes from it and ends bit-identical (on CPU) to an
uninterrupted run. A checkpoint is resumed only by the run it belongs to: the same
protocol, settings, seed, data and --code-version. It is deleted once the outputs are
written, unless --keep-final-checkpoint (the default for the datasets the workflow lists in
$MMJSD_PACKED_DATASETS): then a rerun of a finished run resumes after its last epoch and
rewrites the same outputs in seconds, which is what a packed SLURM job that is
resubmitted whole needs for its members that had finished (docs/cluster.md); the
workflow deletes kept checkpoints when a run of it succeeds. A NaN or inf loss stops the
job with the epoch, step and loss term, and the last good checkpoint is kept; so does an
Adam second-moment estimate that overflowed to inf, which would freeze its parameters
while the loss stays finite.

The training split is held in memory as uint8 pixels and character indices: on the GPU
when it takes at most half of the GPU's free memory, else in host memory, from where each
gathered batch is copied over. Batches become float and one-hot on the device.

Randomness is seeded per (seed, epoch) for the data order and the training-text
offsets, and by torch's global generator (saved in checkpoints) for latent samples.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mmjsd.core import registry
from mmjsd.core.cli import add_runtime_arguments, json_arg, main_guard
from mmjsd.core.config import TrainConfig, from_dict
from mmjsd.core.departures import PROTOCOLS, check_protocol
from mmjsd.core.errors import UserError
from mmjsd.core.io import atomic_path, canonical_json, sha256_file, write_json, write_text
from mmjsd.core.runtime import epoch_order, library_versions, resolve_device, seed_everything, set_threads, split_device
from mmjsd.data.readers import load_split
from mmjsd.gpu_slots import PACKED_DATASETS_VARIABLE, packed_datasets
from mmjsd.models import MultimodalVAE, build_model

log = logging.getLogger("mmjsd.train")

#: Bumped when the checkpoint layout changes; older checkpoints are ignored, not misread.
CHECKPOINT_VERSION = 1


@dataclasses.dataclass
class RunSpec:
    """Everything that defines a training run; equal specs give equal results."""

    dataset: str
    variant: str
    seed: int
    config: TrainConfig
    data_path: Path
    data_sha256: str
    #: corrected or reference-exact (mmjsd.core.departures.PROTOCOLS): which results tree the run belongs to.
    protocol: str
    #: Version of the code that trains (the workflow passes the job's code hash, mmjsd.core.provenance).
    code_version: str = ""

    def __post_init__(self) -> None:
        check_protocol(self.protocol, self.config.departures, f"training.{self.dataset} ({self.variant})")

    def identity(self) -> str:
        """What a checkpoint must match to be resumed (protocol, hyper-parameters, seed, data, code)."""
        return canonical_json(
            {
                "dataset": self.dataset,
                "variant": self.variant,
                "seed": self.seed,
                "protocol": self.protocol,
                "config": dataclasses.asdict(self.config),
                "data": self.data_sha256,
                "code": self.code_version,
            }
        )


class NonFiniteTracker:
    """Finds the first step whose loss or a loss term is NaN/inf without a host sync per step.

    Each step's values are checked on the device; only :meth:`raise_if_found` (called
    every ``log_every`` steps and at the end of an epoch) reads the result back.
    """

    def __init__(self, term_names: list[str], device: torch.device):
        self.names = ["loss"] + term_names
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_terms = torch.zeros(len(self.names), dtype=torch.bool, device=device)

    def update(self, step: int, values: torch.Tensor) -> None:
        bad = ~torch.isfinite(values)
        is_first = (self.first_step < 0) & bad.any()
        self.first_step = torch.where(is_first, torch.full_like(self.first_step, step), self.first_step)
        self.bad_terms = torch.where(is_first, bad, self.bad_terms)

    def raise_if_found(self, epoch: int, checkpoint: Path) -> None:
        step = int(self.first_step)
        if step >= 0:
            terms = [n for n, b in zip(self.names, self.bad_terms.tolist(), strict=True) if b]
            raise UserError(
                f"non-finite loss at epoch {epoch}, step {step} (terms: {', '.join(terms)}); training stopped and "
                f"{checkpoint_kept(checkpoint)}. Lower the learning rate or check the data."
            )


def checkpoint_kept(checkpoint: Path) -> str:
    """What a stopped job leaves to resume from."""
    return f"the last good checkpoint {checkpoint} is kept" if checkpoint.is_file() else "no checkpoint was written yet"


def overflowed_adam_moments(optimizer: torch.optim.Optimizer, names: dict[torch.Tensor, str]) -> list[str]:
    """Names of the parameters whose Adam second-moment estimate v holds inf or NaN (one host read).

    Above ~6e20 a float32 gradient's (1 − beta2)·g² is inf. v then stays inf for good (0.999 · inf),
    so Adam's update m / sqrt(v) is 0 and the parameter silently stops training while the
    loss stays finite. Such a state never recovers, so one check per epoch, before the
    checkpoint, suffices.
    """
    params = [p for group in optimizer.param_groups for p in group["params"] if p in optimizer.state]
    if not params:
        return []
    overflowed = torch.stack([~torch.isfinite(optimizer.state[p]["exp_avg_sq"]).all() for p in params]).tolist()
    return [names[p] for p, bad in zip(params, overflowed, strict=True) if bad]


def raise_if_adam_overflowed(
    optimizer: torch.optim.Optimizer, names: dict[torch.Tensor, str], dataset: str, epoch: int, checkpoint: Path
) -> None:
    """UserError naming the frozen parameters and the remedies, when :func:`overflowed_adam_moments` finds any."""
    frozen = overflowed_adam_moments(optimizer, names)
    if frozen:
        raise UserError(
            f"Adam's second-moment estimate overflowed to inf for {len(frozen)} parameter tensors (first: {frozen[0]}) "
            f"in epoch {epoch}: their gradients passed ~6e20, and such parameters never update again. "
            f"Training stopped and {checkpoint_kept(checkpoint)}. Set training.{dataset}.defaults.grad_clip_norm "
            "or lower the learning rate (README: Known numerical risk)."
        )


def clip_gradient_norm(parameters: Sequence[torch.Tensor], max_norm: float) -> None:
    """Rescale the gradients in place to a global L2 norm of at most ``max_norm``.

    The norm is accumulated in float64: torch's float32 norm overflows to inf for the
    gradients clipping is for (squares above ~3.4e38), which would zero every gradient.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads]))
    torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total)


def without_speed_switches(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` computed as the reference computes: float32, eager, contiguous (bf16
    autocast, torch.compile and channels-last off)."""
    return dataclasses.replace(cfg, amp_bf16=False, compile=False, channels_last=False)


#: Devices with a fused Adam kernel in torch.
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def to_channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` with its image tensors ([B, C, H, W]) in channels-last layout; other tensors as they are."""
    return {m: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for m, x in batch.items()}


class TrainingStep:
    """One optimisation step: forward (bf16 autocast and torch.compile when configured), backward, Adam.

    Adam as the reference (betas 0.9/0.999, no weight decay, no clipping unless
    ``grad_clip_norm`` is set and the ``gradient_clipping`` departure is ``corrected``; see
    :func:`clip_gradient_norm`), as one fused kernel on CPUs and GPUs (on a
    2-core CPU 1.3 ms instead of 5 ms per MST step; the
    benchmark's reference modes pass ``fused_adam=False``, the reference's own Adam).
    With ``channels_last`` the model's 4-D weights and each batch's images are kept
    channels-last, which oneDNN (and cuDNN's tensor-core kernels) run without
    layout conversions; the function is the same, only the summation order differs. The
    benchmark suite times this same object.
    """

    def __init__(self, model: MultimodalVAE, cfg: TrainConfig, device: torch.device, fused_adam: bool = True):
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.lr, fused=fused_adam and device.type in FUSED_ADAM_DEVICES
        )
        self.loss_fn = torch.compile(model.forward_loss) if cfg.compile else model.forward_loss
        self.device_type = device.type
        self.amp_bf16 = cfg.amp_bf16
        self.channels_last = cfg.channels_last
        # the official optimiser does not clip (departure ``gradient_clipping``, docs/departures.md)
        self.grad_clip_norm = None if cfg.reference("gradient_clipping") else cfg.grad_clip_norm
        self.parameters = list(model.parameters())

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Update the model on ``batch``; returns the loss and its unweighted terms (still on the device)."""
        if self.channels_last:
            batch = to_channels_last(batch)
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.amp_bf16):
            loss, terms = self.loss_fn(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip_norm is not None:
            clip_gradient_norm(self.parameters, self.grad_clip_norm)
        self.optimizer.step()
        return loss, terms


def save_checkpoint(
    path: Path, spec: RunSpec, model: MultimodalVAE, optimizer: torch.optim.Optimizer, epoch: int, rows: list[dict]
) -> None:
    state = {
        "version": CHECKPOINT_VERSION,
        "identity": spec.identity(),
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "log_rows": rows,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, spec: RunSpec, device: torch.device) -> dict | None:
    """The checkpoint's state if it belongs to this exact run, else None (with a log line saying why).

    Read with ``weights_only=True``: a checkpoint holds only tensors, numbers, strings and
    containers of them, so a file that would unpickle anything else (and could run code
    while doing so) is refused like an unreadable one.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a checkpoint cut short by a kill, or one holding arbitrary objects, is not resumed
        log.warning("ignoring unreadable checkpoint %s (%s); starting from scratch", path, err)
        return None
    if state.get("version") != CHECKPOINT_VERSION or state.get("identity") != spec.identity():
        log.warning("checkpoint %s belongs to other settings or data; starting from scratch", path)
        return None
    return state


def write_outputs(
    out_dir: Path, spec: RunSpec, model: MultimodalVAE, rows: list[dict], device: torch.device, wall_time: float
) -> None:
    """model.pt, config.json and train_log.csv, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.pt", suffix=".pt") as tmp:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "dataset": spec.dataset,
                "variant": spec.variant,
                "seed": spec.seed,
                "protocol": spec.protocol,
                "train_config": dataclasses.asdict(spec.config),
                "epoch": len(rows),
            },
            tmp,
        )
    write_json(
        out_dir / "config.json",
        {
            "dataset": spec.dataset,
            "variant": spec.variant,
            "seed": spec.seed,
            "protocol": spec.protocol,
            "train_config": dataclasses.asdict(spec.config),
            "data": {"path": str(spec.data_path), "sha256": spec.data_sha256},
            "device": str(device),
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "wall_time_s": round(wall_time, 3),
            "versions": library_versions(),
        },
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "train_log.csv", buffer.getvalue())


def train(
    spec: RunSpec,
    out_dir: Path,
    checkpoint: Path,
    device: torch.device,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    keep_final_checkpoint: bool = False,
) -> list[dict]:
    """Train (or resume) the run; returns the per-epoch log rows. ``on_epoch_end(epoch)`` runs after each checkpoint;
    ``keep_final_checkpoint`` keeps the last one after the outputs are written (see the module docstring)."""
    cfg = spec.config
    started = time.perf_counter()
    seed_everything(spec.seed)
    data = load_split(spec.dataset, spec.data_path, "train")
    data_device = split_device(data.nbytes, device)
    if data_device != device:
        log.info(
            "the training split (%.2f GiB) takes more than half of the GPU's free memory; it stays in host memory",
            data.nbytes / 2**30,
        )
    data.to(data_device)
    if len(data) < cfg.batch_size:
        raise UserError(f"the training split has {len(data)} items, fewer than one batch (batch_size {cfg.batch_size})")
    model = build_model(spec.dataset, spec.variant, cfg).to(device)
    step_fn = TrainingStep(model, cfg, device)
    optimizer = step_fn.optimizer
    rows: list[dict] = []
    state = load_checkpoint(checkpoint, spec, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        rows = state["log_rows"]
        # the wall time recorded with the outputs counts the resumed epochs too, not only this process's
        started -= sum(row["wall_time_s"] for row in rows)
        log.info(
            "resuming %s/%s seed %d after epoch %d from %s",
            spec.dataset,
            spec.variant,
            spec.seed,
            state["epoch"],
            checkpoint,
        )
    steps_per_epoch = len(data) // cfg.batch_size  # drop_last, as the reference
    term_names = list(model.term_weights())
    parameter_names = {p: name for name, p in model.named_parameters()}
    for epoch in range(len(rows) + 1, cfg.epochs + 1):
        model.train()
        if cfg.redraw_text:
            data.redraw_text(spec.seed, epoch)
        order = epoch_order(len(data), spec.seed, epoch, data_device)
        sums = torch.zeros(len(term_names) + 1, device=device)
        tracker = NonFiniteTracker(term_names, device)
        epoch_start = time.perf_counter()
        bar = _progress(steps_per_epoch, f"{spec.variant} seed {spec.seed} epoch {epoch}/{cfg.epochs}", progress)
        for step in range(steps_per_epoch):
            batch, _ = data.batch(order[step * cfg.batch_size : (step + 1) * cfg.batch_size], device)
            loss, terms = step_fn(batch)
            values = torch.stack([loss.detach()] + [terms[n].detach() for n in term_names]).float()
            tracker.update(step, values)
            sums += values
            if (step + 1) % cfg.log_every == 0 or step + 1 == steps_per_epoch:
                tracker.raise_if_found(epoch, checkpoint)
                bar.update(step + 1 - bar.n)
                bar.set_postfix(loss=f"{float(sums[0]) / (step + 1):.2f}")
        bar.close()
        # before the epoch is checkpointed
        raise_if_adam_overflowed(optimizer, parameter_names, spec.dataset, epoch, checkpoint)
        means = (sums / steps_per_epoch).tolist()
        row = {"epoch": epoch, "steps": steps_per_epoch, "loss": means[0]}
        row.update(dict(zip(term_names, means[1:], strict=True)))
        row["wall_time_s"] = round(time.perf_counter() - epoch_start, 3)
        rows.append(row)
        save_checkpoint(checkpoint, spec, model, optimizer, epoch, rows)
        log.info("epoch %d: loss %.3f (%.1f s)", epoch, means[0], row["wall_time_s"])
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    write_outputs(out_dir, spec, model, rows, device, time.perf_counter() - started)
    if not keep_final_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return rows


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, mininterval=5.0, unit="step")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mmjsd.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, choices=registry.DATASETS.names())
    parser.add_argument(
        "--variant", required=True, choices=registry.variant_names(), help="an objective, optionally with -ms"
    )
    parser.add_argument("--seed", required=True, type=int, help="run seed (data order, initialisation, latent samples)")
    parser.add_argument(
        "--protocol",
        required=True,
        choices=PROTOCOLS,
        help=(
            "the run's protocol, recorded in its outputs (reference-exact: every switch in --hparams must be reference)"
        ),
    )
    parser.add_argument(
        "--hparams",
        required=True,
        type=json_arg,
        help="resolved training config (mmjsd.core.config.TrainConfig) as JSON",
    )
    parser.add_argument("--data", required=True, type=Path, help="HDF5 dataset built by mmjsd.build_dataset")
    parser.add_argument(
        "--out-dir", required=True, type=Path, help="run directory for model.pt, config.json, train_log.csv"
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="resume state, rewritten every epoch (not a pipeline output)"
    )
    parser.add_argument(
        "--keep-final-checkpoint",
        action="store_true",
        help=(
            "keep --checkpoint after the outputs are written, so a rerun rewrites them without training (default for "
            f"the datasets listed in ${PACKED_DATASETS_VARIABLE}, which the workflow sets for packed training jobs)"
        ),
    )
    parser.add_argument(
        "--code-version",
        default="",
        help="version of the training code (the workflow passes its code hash); no other code's checkpoint is resumed",
    )
    add_runtime_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    cfg = from_dict(TrainConfig, args.hparams, f"training.{args.dataset} ({args.variant})")
    spec = RunSpec(
        args.dataset, args.variant, args.seed, cfg, args.data, sha256_file(args.data), args.protocol, args.code_version
    )
    train(
        spec,
        args.out_dir,
        args.checkpoint,
        resolve_device(args.device),
        progress=not args.no_progress,
        keep_final_checkpoint=args.keep_final_checkpoint or args.dataset in packed_datasets(),
    )


if __name__ == "__main__":
    main_guard(main)
