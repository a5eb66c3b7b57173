"""Benchmark suite smoke test: every subcommand runs on tiny data and writes its documented CSV.

Speed and memory targets are what the benchmarks measure; they are never asserted here.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from helpers import DEMO_CONFIG, read_csv, run_bench
from mmjsd.bench import build, evaluation, precision, training
from mmjsd.bench.__main__ import main
from mmjsd.core.config import load_config
from mmjsd.core.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_training_measures_every_mode_and_ratio(mst_h5, tmp_path):
    header, rows = run_bench(
        "training",
        mst_h5,
        tmp_path / "training.csv",
        *["--variants", "mmjsd", "mvae-ms", "--steps", "2", "--warmup", "1", "--batch-size", "16"],
        *["--threads", "1", "--workers", "0", "--device", "cpu"],
    )
    assert tuple(header) == training.TRAINING_COLUMNS
    assert [row["variant"] for row in rows] == ["mmjsd", "mvae-ms"]
    rate_columns = [c for c in header if c.endswith("_samples_per_s") or "_over_" in c]
    assert len(rate_columns) == 7
    assert all(float(row[c]) > 0 for row in rows for c in rate_columns)
    assert {row["torch_threads"] for row in rows} == {"1"}
    for row in rows:
        assert float(row["loop_gflop_per_s"]) == pytest.approx(
            float(row["loop_samples_per_s"]) * float(row["mflop_per_sample"]) / 1e3, rel=1e-3
        )
    # MVAE-MS decodes every modality from the joint and from each unimodal posterior; mmJSD decodes each once.
    assert float(rows[1]["mflop_per_sample"]) > float(rows[0]["mflop_per_sample"]) > 0


def test_flop_per_sample_of_a_linear_step_is_the_closed_form():
    """Forward 2·in·out per item; backward only the weight gradient (2·in·out), as the input needs no gradient."""
    layer = torch.nn.Linear(7, 5)
    batch = {"x": torch.randn(3, 7)}
    assert training.flop_per_sample(lambda b: layer(b["x"]).sum().backward(), batch) == 4 * 7 * 5


def module_flop_counts(model: torch.nn.Module) -> dict[str, float]:
    """Forward hooks that add up, from each call's shapes, the multiply-adds ×2 of every convolution and linear layer,
    and those whose input needs no gradient (their backward computes only the weight gradient)."""
    counts = {"forward": 0.0, "no_input_grad": 0.0}

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            flops = 2 * output.numel() * module.in_features
        elif isinstance(module, torch.nn.modules.conv._ConvTransposeNd):
            flops = 2 * inputs[0].numel() * module.out_channels * math.prod(module.kernel_size)
        else:
            flops = 2 * output.numel() * module.in_channels * math.prod(module.kernel_size)
        counts["forward"] += flops
        counts["no_input_grad"] += 0 if inputs[0].requires_grad else flops

    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)):
            module.register_forward_hook(count)
    return counts


@pytest.mark.parametrize("variant", ["mmjsd", "mvae-ms"])
def test_flop_per_sample_of_a_training_step_matches_a_count_from_layer_shapes(mst_h5, variant):
    """The aten-level count equals 3× the layers' forward FLOPs (forward, input and weight gradients) less the input
    gradients never computed: an independent count from module hooks."""
    cfg = dataclasses.replace(load_config(*DEMO_CONFIG).train_config("mnist_svhn_text", variant), batch_size=8)
    step = training.ComputeStep("mnist_svhn_text", variant, cfg, torch.device("cpu"))
    batch = training.premade_batches("mnist_svhn_text", mst_h5, 8, torch.device("cpu"))[0]
    counts = module_flop_counts(step.model)
    counted = training.flop_per_sample(step, batch)
    assert counted == pytest.approx((3 * counts["forward"] - counts["no_input_grad"]) / 8, rel=1e-12)
    # per item, the count does not depend on the batch size (the benchmark counts a small batch)
    assert training.flop_per_sample(step, {name: value[:3] for name, value in batch.items()}) == counted


def test_training_refuses_a_file_too_small_for_the_steps(mst_h5, tmp_path):
    with pytest.raises(UserError, match="fewer than"):
        main(
            [
                "training",
                "--data",
                str(mst_h5),
                "--config",
                *DEMO_CONFIG,
                "--variants",
                "mmjsd",
                "--steps",
                "1000",
                "--device",
                "cpu",
                "--csv",
                str(tmp_path / "t.csv"),
            ]
        )


def test_build_reports_time_and_peak_memory(tmp_path):
    out = tmp_path / "build.csv"
    main(
        [
            "build",
            "--scale",
            "0.002",
            "--pairs-per-image",
            "2",
            "--raw-dir",
            str(tmp_path / "raw"),
            "--output",
            str(tmp_path / "mst.h5"),
            "--csv",
            str(out),
        ]
    )
    header, rows = read_csv(out)
    assert tuple(header) == build.COLUMNS
    assert float(rows[0]["peak_rss_gib"]) > 0 and float(rows[0]["build_s"]) > 0
    assert (tmp_path / "mst.h5").is_file()


def test_evaluation_reports_seconds_per_metric(mst_h5, tmp_path):
    header, rows = run_bench(
        "evaluation",
        mst_h5,
        tmp_path / "evaluation.csv",
        *["--metrics", "coherence", "likelihood", "--n-test", "16", "--threads", "1", "--device", "cpu"],
    )
    assert tuple(header) == evaluation.COLUMNS
    assert [row["metric"] for row in rows] == ["coherence", "likelihood"]


def test_memory_stops_the_training_job_and_reports_its_peak(mst_h5, tmp_path):
    header, rows = run_bench(
        "memory", mst_h5, tmp_path / "memory.csv", *["--steps", "1", "--batch-size", "16", "--device", "cpu"]
    )
    assert tuple(header) == training.MEMORY_COLUMNS
    assert int(rows[0]["steps_seen"]) >= 1
    assert float(rows[0]["peak_rss_gib"]) > 0.1  # a torch process; the target itself is for the benchmark, not a test


def test_precision_comparison_is_welchs_test_against_the_closed_form_for_two_degrees_of_freedom():
    """Equal variances and n = 2 per side give Welch df = 2, where the t CDF is 1/2 + t / (2 sqrt(2 + t²)).

    So the two-sided p-value is 1 − t / sqrt(2 + t²).
    """
    # difference 0.1, both variances 0.02: SE = sqrt(0.02/2 + 0.02/2) = 0.1414, t = 0.7071
    close = precision.compare_to_baseline([0.5, 0.7], [0.6, 0.8])
    t = 0.1 / 0.02**0.5
    assert close["difference"] == pytest.approx(0.1)
    assert close["seed_noise"] == pytest.approx(0.02**0.5)
    assert close["p_value"] == pytest.approx(1 - t / (2 + t**2) ** 0.5)  # 0.553
    assert close["within_seed_noise"]
    # every seed moves by 0.2 while seeds spread by 0.014: t = 14.1, p = 0.005
    shifted = precision.compare_to_baseline([0.50, 0.52], [0.70, 0.72])
    t = 0.2 / 0.0002**0.5
    assert shifted["p_value"] == pytest.approx(1 - t / (2 + t**2) ** 0.5)
    assert not shifted["within_seed_noise"]


def test_precision_comparison_without_spread_and_with_too_few_seeds():
    assert precision.compare_to_baseline([0.1, 0.1], [0.1, 0.1])["within_seed_noise"]
    assert not precision.compare_to_baseline([0.1, 0.1], [0.2, 0.2])["within_seed_noise"]
    with pytest.raises(ValueError, match="at least two"):
        precision.compare_to_baseline([0.5], [0.6])


def test_precision_settings_turn_on_one_switch_over_an_all_off_baseline():
    base = dataclasses.replace(
        load_config(*DEMO_CONFIG).train_config("mnist_svhn_text", "mmjsd"),
        amp_bf16=True,
        compile=True,
        channels_last=True,
    )
    baseline = precision.setting_config(base, precision.BASELINE, epochs=4)
    assert (baseline.amp_bf16, baseline.compile, baseline.channels_last, baseline.epochs) == (False, False, False, 4)
    assert precision.setting_config(base, "bf16", 4).amp_bf16 and not precision.setting_config(base, "bf16", 4).compile
    assert precision.setting_config(base, "channels_last", 4, batch_size=8).channels_last
    assert precision.setting_config(base, "channels_last", 4, batch_size=8).batch_size == 8


def test_precision_trains_and_scores_every_setting_and_seed(mst_h5, tmp_path, capsys):
    header, rows = run_bench(
        "precision",
        mst_h5,
        tmp_path / "precision.csv",
        *["--switches", "channels_last", "--seeds", "0", "1", "--epochs", "1", "--batch-size", "16"],
        *["--metrics", "latent_probe", "--device", "cpu"],
    )
    assert tuple(header) == precision.COLUMNS
    subsets = {"mnist", "svhn", "text", "mnist+svhn", "mnist+text", "svhn+text", "mnist+svhn+text"}
    for setting in ("float32", "channels_last"):
        for seed in ("0", "1"):
            chosen = [row for row in rows if row["setting"] == setting and row["seed"] == seed]
            assert {row["value"] for row in chosen} == {f"latent_probe/{s}" for s in subsets}
            assert all(0.0 <= float(row["score"]) <= 1.0 for row in chosen)
    # the same function in another memory layout: every probe accuracy within a few test items
    scores = {(row["setting"], row["seed"], row["value"]): float(row["score"]) for row in rows}
    assert all(
        abs(scores["channels_last", seed, value] - score) < 0.02
        for (setting, seed, value), score in scores.items()
        if setting == "float32"
    )
    # near-identical runs
    assert "mmjsd channels_last: 7 of 7 metric values within seed noise" in capsys.readouterr().out


def test_precision_refuses_one_seed_and_coherence_without_classifiers(mst_h5, tmp_path):
    with pytest.raises(UserError, match="at least two distinct seeds"):
        main(["precision", "--data", str(mst_h5), "--seeds", "3", "--csv", str(tmp_path / "p.csv")])
    with pytest.raises(UserError, match="--classifiers"):
        main(["precision", "--data", str(mst_h5), "--metrics", "coherence", "--csv", str(tmp_path / "p.csv")])
