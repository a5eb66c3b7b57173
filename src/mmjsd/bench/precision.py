"""``precision``: do the speed switches move the metrics beyond seed noise?

    python -m mmjsd.bench precision --data results/datasets/mnist_svhn_text.h5 \\
        --classifiers results/classifiers/mnist_svhn_text --seeds 0 1 2 --epochs 10

The switches ``bf16`` (``TrainConfig.amp_bf16``), ``compile`` and ``channels_last`` are
only worth turning on where they leave the paper's numbers alone. For each variant and
seed this trains a baseline (float32, eager, contiguous: the reference's computation) and
one run per switch turned on alone, with :func:`mmjsd.train.train` on --data and the
configured hyper-parameters (--epochs replaces the configured count), then scores every
run with the evaluators of --metrics exactly as ``python -m mmjsd.evaluate`` would.

Any change of rounding sends training down another trajectory, so even a switch that
computes the same function moves each seed's metrics about as much as a new seed would.
A switch is "within seed noise" on a metric value when Welch's t-test cannot tell its
runs' mean from the baseline's at the 5% level (:func:`compare_to_baseline`). With three
seeds the test only catches shifts of several seed standard deviations: use five or more
seeds before trusting a "yes", and expect about one value in 20 to be flagged by chance.
Prints that table and the training samples/s of each setting (last epoch, so
torch.compile's compilation is not counted); writes one CSV row per (variant, setting,
seed, metric value).

The figures say something only at the scale the metrics are reported at: run it with
the paper's data and epochs on the GPU that will train, before switching anything on in
``config.yaml``. On a CPU, bf16 autocast needs AVX512-BF16 or AMX to be fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mmjsd.bench import ENVIRONMENT_COLUMNS, environment, print_table, write_csv
from mmjsd.core import registry
from mmjsd.core.config import Config, TrainConfig, load_config
from mmjsd.core.departures import CORRECTED_PROTOCOL
from mmjsd.core.errors import UserError
from mmjsd.core.io import sha256_file
from mmjsd.core.runtime import resolve_device, set_threads
from mmjsd.evaluation import load_evaluator
from mmjsd.evaluation.runs import EvaluationInputs, load_run
from mmjsd.train import RunSpec, train, without_speed_switches

#: What each switch sets on top of the baseline (every switch off).
SWITCHES: dict[str, dict[str, bool]] = {
    "bf16": {"amp_bf16": True},
    "compile": {"compile": True},
    "channels_last": {"channels_last": True},
}
BASELINE = "float32"

#: Two-sided level of the test against seed noise: about 1 metric value in 20 is flagged by chance.
SIGNIFICANCE = 0.05

#: Metrics that score generated samples with the pipeline's trained classifiers.
NEEDS_CLASSIFIERS = ("coherence", "prd")

COLUMNS = ("dataset", "variant", "setting", "seed", "epochs", "value", "score", "samples_per_s") + ENVIRONMENT_COLUMNS
SUMMARY_COLUMNS = (
    "variant",
    "setting",
    "value",
    "baseline",
    "switched",
    "difference",
    "seed_noise",
    "p_value",
    "within_seed_noise",
)
SPEED_COLUMNS = ("variant", "setting", "samples_per_s", "speedup")


def setting_config(base: TrainConfig, setting: str, epochs: int, batch_size: int | None = None) -> TrainConfig:
    """``base`` with every switch off, ``epochs`` epochs (and
    ``batch_size`` when given), and ``setting``'s switch on."""
    off = dataclasses.replace(without_speed_switches(base), epochs=epochs, batch_size=batch_size or base.batch_size)
    return dataclasses.replace(off, **SWITCHES.get(setting, {}))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) of ``values``."""
    return statistics.fmean(values), statistics.stdev(values)


def compare_to_baseline(
    baseline: Sequence[float], switched: Sequence[float], level: float = SIGNIFICANCE
) -> dict[str, float | bool]:
    """Is the switched runs' mean a draw from the same seed-to-seed spread as the baseline's?

    A rounding change sends training down another trajectory, so over seeds a switch that
    changes nothing acts like a re-seeding. Welch's two-sample t-test: t = (mean_s − mean_b)
    / sqrt(s_b²/n_b + s_s²/n_s), Welch–Satterthwaite degrees of freedom, two-sided p-value;
    ``within_seed_noise`` when p >= ``level``. Paired seeds share initialisation and data
    order, which can only correlate the two samples positively and makes the test
    conservative. ``seed_noise`` = sqrt((s_b² + s_s²) / 2), the pooled sample standard
    deviation over seeds. When neither sample varies, equal means are within noise and
    different ones are not.
    """
    if len(baseline) < 2 or len(switched) < 2:
        raise ValueError("need at least two seeds for the baseline and for the switched runs")
    from scipy.stats import ttest_ind

    difference = statistics.fmean(switched) - statistics.fmean(baseline)
    seed_noise = ((statistics.variance(baseline) + statistics.variance(switched)) / 2) ** 0.5
    if seed_noise == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = float(ttest_ind(switched, baseline, equal_var=False).pvalue)
    return {
        "difference": difference,
        "seed_noise": seed_noise,
        "p_value": p_value,
        "within_seed_noise": p_value >= level,
    }


def train_and_score(
    args: argparse.Namespace, config: Config, variant: str, setting: str, seed: int, device: torch.device, workdir: Path
) -> list[dict]:
    """Train one run of ``setting`` and score it; one row per metric value."""
    cfg = setting_config(config.train_config(args.dataset, variant), setting, args.epochs, args.batch_size)
    run_dir = workdir / variant / setting / f"seed{seed}"
    spec = RunSpec(args.dataset, variant, seed, cfg, args.data, sha256_file(args.data), CORRECTED_PROTOCOL)
    log_rows = train(spec, run_dir, run_dir / "last.pt", device, progress=False)
    samples_per_s = log_rows[-1]["steps"] * cfg.batch_size / log_rows[-1]["wall_time_s"]
    run = load_run(run_dir, device)
    common = {
        "dataset": args.dataset,
        "variant": variant,
        "setting": setting,
        "seed": seed,
        "epochs": args.epochs,
        "samples_per_s": samples_per_s,
    }
    common.update(environment(device))
    rows = []
    for metric in args.metrics:
        inputs = EvaluationInputs(
            run=run,
            data_path=args.data,
            job=config.evaluation.job(metric, args.dataset, config.departures),
            classifiers_dir=args.classifiers,
        )
        result = load_evaluator(metric)(inputs)
        rows += [
            {**common, "value": f"{result.metric_name}/{name}", "score": score} for name, score in result.values.items()
        ]
    print(
        f"  {variant} {setting} seed {seed}: {samples_per_s:.0f} samples/s, {len(rows)} metric values", file=sys.stderr
    )
    return rows


def comparison_cells(comparison: Mapping[str, float | bool]) -> dict[str, str]:
    """Table cells of :func:`compare_to_baseline`'s result (4 decimals: accuracies differ in the third)."""
    return {
        "difference": f"{comparison['difference']:+.4f}",
        "seed_noise": f"{comparison['seed_noise']:.4f}",
        "p_value": f"{comparison['p_value']:.3f}",
        "within_seed_noise": "yes" if comparison["within_seed_noise"] else "NO",
    }


def summarise(rows: Sequence[dict], switches: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """Per (variant, switch, metric value): baseline and switched mean ± std and the comparison; per setting: speed."""
    scores: dict[tuple[str, str, str], dict[int, float]] = {}
    speeds: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        scores.setdefault((row["variant"], row["setting"], row["value"]), {})[row["seed"]] = row["score"]
        speeds.setdefault((row["variant"], row["setting"]), {})[row["seed"]] = row["samples_per_s"]
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    values = list(dict.fromkeys(row["value"] for row in rows))
    mean_speed = {key: statistics.fmean(by_seed.values()) for key, by_seed in speeds.items()}
    speed = [
        {
            "variant": variant,
            "setting": setting,
            "samples_per_s": mean_speed[variant, setting],
            "speedup": mean_speed[variant, setting] / mean_speed[variant, BASELINE],
        }
        for variant in variants
        for setting in [BASELINE, *switches]
    ]
    summary = [
        comparison_row(variant, switch, value, scores[variant, BASELINE, value], scores[variant, switch, value])
        for variant in variants
        for switch in switches
        for value in values
    ]
    return summary, speed


def comparison_row(
    variant: str, switch: str, value: str, baseline_by_seed: Mapping[int, float], switched_by_seed: Mapping[int, float]
) -> dict:
    """One summary row: both settings' mean ± std over the same seeds, and :func:`compare_to_baseline`."""
    seeds = sorted(baseline_by_seed)
    baseline = [baseline_by_seed[s] for s in seeds]
    switched = [switched_by_seed[s] for s in seeds]
    return {
        "variant": variant,
        "setting": switch,
        "value": value,
        "baseline": "{:.4f} ± {:.4f}".format(*mean_std(baseline)),
        "switched": "{:.4f} ± {:.4f}".format(*mean_std(switched)),
        **compare_to_baseline(baseline, switched),
    }


def verdicts(summary: Sequence[dict]) -> Mapping[tuple[str, str], str]:
    """Per (variant, switch): how many metric values stayed within seed noise."""
    counts: dict[tuple[str, str], list[bool]] = {}
    for row in summary:
        counts.setdefault((row["variant"], row["setting"]), []).append(row["within_seed_noise"])
    return {
        key: (
            f"{sum(flags)} of {len(flags)} metric values within seed noise (about "
            f"{SIGNIFICANCE * len(flags):.1f} flagged by chance alone)"
        )
        for key, flags in counts.items()
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist_svhn_text", choices=registry.DATASETS.names())
    parser.add_argument("--data", type=Path, help="HDF5 dataset (default: results/datasets/<dataset>.h5)")
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[Path("config.yaml")], help="config files, later ones win"
    )
    parser.add_argument("--variants", nargs="+", default=["mmjsd"])
    parser.add_argument(
        "--switches",
        nargs="+",
        default=list(SWITCHES),
        choices=tuple(SWITCHES),
        help="each is compared alone with the baseline",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (at least two: seed noise is their spread)"
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of every run")
    parser.add_argument("--batch-size", type=int, help="training batch size (default: as configured)")
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=registry.METRICS.names(),
        help="default: latent_probe, plus coherence with --classifiers",
    )
    parser.add_argument(
        "--classifiers",
        type=Path,
        help="results/classifiers/<dataset>, trained by the pipeline (coherence and prd need it)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1, as the pipeline's jobs; 0 = torch's default)"
    )
    parser.add_argument("--csv", type=Path, default=Path("results/benchmarks/precision.csv"), help="CSV to write")


def check_arguments(args: argparse.Namespace) -> None:
    """Defaults that depend on other options, and refusals that name the option to fix."""
    args.data = args.data or Path(f"results/datasets/{args.dataset}.h5")
    if len(set(args.seeds)) < 2:
        raise UserError("--seeds needs at least two distinct seeds: seed noise is the spread over seeds")
    if not args.data.is_file():
        raise UserError(
            f"dataset file {args.data} does not exist; build it with snakemake (rule build_dataset) or pass --data"
        )
    if args.metrics is None:
        args.metrics = ["latent_probe", "coherence"] if args.classifiers else ["latent_probe"]
    needing = [m for m in args.metrics if m in NEEDS_CLASSIFIERS]
    if needing and not (args.classifiers and args.classifiers.is_dir()):
        raise UserError(
            f"--metrics {' '.join(needing)} need --classifiers, a directory of trained classifiers "
            f"(results/classifiers/{args.dataset})"
        )


def run(args: argparse.Namespace) -> None:
    check_arguments(args)
    set_threads(args.threads)
    config = load_config(*args.config)
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmjsd-bench-precision-") as workdir:
        for variant in args.variants:
            for setting in [BASELINE, *args.switches]:
                for seed in sorted(set(args.seeds)):
                    rows += train_and_score(args, config, variant, setting, seed, device, Path(workdir))
    write_csv(args.csv, rows, COLUMNS)
    summary, speed = summarise(rows, args.switches)
    print(
        f"\n{args.dataset}, {args.epochs} epochs, seeds {sorted(set(args.seeds))}, "
        f"{rows[0]['device_name']}; mean ± std over seeds"
    )
    print_table([{**row, **comparison_cells(row)} for row in summary], SUMMARY_COLUMNS)
    print()
    print_table(speed, SPEED_COLUMNS)
    for (variant, switch), verdict in verdicts(summary).items():
        print(f"{variant} {switch}: {verdict}")
