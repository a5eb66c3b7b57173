"""The GPU-sharing benchmarks (mmjsd.bench.gpu) on the CPU: they run on tiny data, write their documented CSVs,
and the activation count behind the memory estimate equals a closed form. Figures are never asserted."""

from __future__ import annotations

import pytest
import torch

from helpers import DEMO_CONFIG, run_bench
from mmjsd.bench import gpu
from mmjsd.bench.__main__ import main
from mmjsd.core.config import load_config
from mmjsd.core.errors import UserError
from mmjsd.models import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_saved_activations_of_a_small_network_are_the_closed_form():
    """Linear(10, 20) keeps its input (b x 10), ReLU its output (b x 20), which the second Linear keeps too (the
    same storage, counted once); weights are parameters, not activations: 30 floats per item."""
    net = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    for batch in (3, 7):
        x = torch.randn(batch, 10)
        assert gpu.saved_activation_bytes(lambda x=x: net(x).sum(), list(net.parameters())) == batch * 30 * 4


def test_gpu_memory_estimates_every_variant(mst_h5, tmp_path):
    header, rows = run_bench("gpu-memory", mst_h5, tmp_path / "gpu_memory.csv", "--variants", "mmjsd", "mvae-ms")
    assert tuple(header) == gpu.MEMORY_COLUMNS
    config = load_config(*DEMO_CONFIG)
    for row in rows:
        model = build_model("mnist_svhn_text", row["variant"], config.train_config("mnist_svhn_text", row["variant"]))
        assert int(row["parameters"]) == sum(p.numel() for p in model.parameters())
        # the CSV keeps 4 decimals
        assert float(row["state_gib"]) == pytest.approx(16 * int(row["parameters"]) / 2**30, abs=1e-4)
        parts = sum(float(row[c]) for c in ("state_gib", "activation_gib", "split_gib", "context_gib"))
        assert float(row["job_gib"]) == pytest.approx(parts, abs=3e-4)
        assert float(row["share_gib"]) == pytest.approx(
            gpu.GPU_MEMORY_GIB / config.resources["mnist_svhn_text"].jobs_per_gpu, rel=1e-3
        )
        assert float(row["activation_gib"]) > 0


def test_concurrent_runs_jobs_through_the_slot_wrapper(mst_h5, tmp_path):
    header, rows = run_bench(
        "concurrent",
        mst_h5,
        tmp_path / "concurrent.csv",
        *["--jobs", "1", "2", "--steps", "2", "--batch-size", "16", "--device", "cpu"],
    )
    assert tuple(header) == gpu.CONCURRENT_COLUMNS
    assert [int(row["jobs"]) for row in rows] == [1, 2]
    assert float(rows[0]["aggregate_over_one"]) == 1.0
    assert float(rows[1]["aggregate_samples_per_s"]) == pytest.approx(
        2 * float(rows[1]["per_job_samples_per_s"]), rel=1e-3
    )
    with pytest.raises(UserError, match="jobs per GPU must be one of"):
        main(["concurrent", "--data", str(mst_h5), "--jobs", "5"])


def test_syncs_runs_an_epoch_and_reports_none_on_a_cpu(mst_h5, tmp_path):
    header, rows = run_bench(
        "syncs", mst_h5, tmp_path / "syncs.csv", *["--steps", "2", "--batch-size", "16", "--device", "cpu"]
    )
    assert tuple(header) == gpu.SYNC_COLUMNS
    assert rows[0]["syncs"] == "0" and rows[0]["device"] == "cpu"
