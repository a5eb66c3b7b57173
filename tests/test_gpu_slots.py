"""GPU slots (mmjsd.gpu_slots) on simulated devices: jobs are wrapper subprocesses with an injected
CUDA_VISIBLE_DEVICES, running a small Python job that records the device it was given and holds it until the
test releases it. Nothing here needs a GPU."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mmjsd.core.errors import UserError
from mmjsd.gpu_slots import UNITS_PER_GPU, job_units, slot_directory, visible_gpus

ROOT = Path(__file__).resolve().parents[1]

#: A job: records (CUDA_VISIBLE_DEVICES, memory share) in <records>/<pid>.started, holds its GPU until
#: <records>/release or <records>/<pid>.release exists, then writes <pid>.ended.
FAKE_JOB = """
import os, pathlib, sys, time
records = pathlib.Path(sys.argv[1])
env = os.environ
devices, share = env.get("CUDA_VISIBLE_DEVICES", "<unset>"), env.get("MMJSD_GPU_MEMORY_FRACTION", "<unset>")
(records / f"{os.getpid()}.tmp").write_text(f"{devices}|{share}")
(records / f"{os.getpid()}.tmp").rename(records / f"{os.getpid()}.started")  # whole, for the test reading it
while not (records / "release").exists() and not (records / f"{os.getpid()}.release").exists():
    time.sleep(0.05)
(records / f"{os.getpid()}.ended").write_text("")
"""


def wrapper_env(tmp_path: Path, devices: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), MMJSD_GPU_SLOT_DIR=str(tmp_path / "slots"))
    env.pop("SLURM_JOB_ID", None)
    if devices is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = devices
    return env


def start_job(records: Path, env: dict[str, str], units: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "mmjsd.gpu_slots",
        "--units",
        str(units),
        "--poll-seconds",
        "0.1",
        "--",
        sys.executable,
        "-c",
        FAKE_JOB,
        str(records),
    ]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


def started(records: Path) -> dict[int, tuple[str, str]]:
    """pid -> (CUDA_VISIBLE_DEVICES, memory share) of every job that has started."""
    return {int(p.stem): tuple(p.read_text().split("|")) for p in records.glob("*.started")}


def wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def running_per_device(records: Path) -> Counter:
    ended = {int(p.stem) for p in records.glob("*.ended")}
    return Counter(device for pid, (device, _) in started(records).items() if pid not in ended)


def test_every_job_gets_one_device_and_no_device_more_than_k(tmp_path):
    """G = 2 simulated GPUs, k = 4 jobs per GPU: of 11 jobs, exactly G*k = 8 start at once (4 per GPU), each
    pinned to one GPU with a quarter of its memory; the other 3 wait, and each takes the slot of a job that ended,
    on that job's GPU."""
    records = tmp_path / "records"
    records.mkdir()
    env = wrapper_env(tmp_path, "0,1")
    jobs = [start_job(records, env, job_units(4)) for _ in range(11)]
    try:
        assert wait_for(lambda: len(started(records)) >= 8), f"only {len(started(records))} of 8 jobs started"
        time.sleep(1.0)  # waiting jobs poll every 0.1 s: a ninth would have started by now
        assert len(started(records)) == 8
        assert running_per_device(records) == {"0": 4, "1": 4}
        assert {share for _, share in started(records).values()} == {"0.25"}

        # two jobs on GPU 0 end: two waiting jobs take their slots there; then one on GPU 1: the last one goes there
        def on_gpu(gpu: str) -> list[str]:
            return [pid for pid, (device, _) in started(records).items() if device == gpu]

        for pid in on_gpu("0")[:2]:
            (records / f"{pid}.release").write_text("")
        assert wait_for(lambda: len(started(records)) == 10)
        assert wait_for(lambda: running_per_device(records) == {"0": 4, "1": 4}), running_per_device(records)
        (records / f"{on_gpu('1')[0]}.release").write_text("")
        assert wait_for(lambda: len(started(records)) == 11)
        assert wait_for(lambda: running_per_device(records) == {"0": 4, "1": 4}), running_per_device(records)
        assert Counter(device for device, _ in started(records).values()) == {"0": 6, "1": 5}
    finally:
        (records / "release").write_text("")
        for job in jobs:
            job.wait(timeout=30)
    assert [job.returncode for job in jobs] == [0] * 11


def test_mixed_sizes_never_exceed_a_gpu(tmp_path):
    """One GPU: a whole-GPU job (24 units) waits while two half-GPU jobs hold it, and a half-GPU job waits while
    the whole-GPU job holds it."""
    records = tmp_path / "records"
    records.mkdir()
    env = wrapper_env(tmp_path, "3")
    halves = [start_job(records, env, job_units(2)) for _ in range(2)]
    assert wait_for(lambda: len(started(records)) == 2)
    whole = start_job(records, env, job_units(1))
    time.sleep(1.0)
    assert len(started(records)) == 2, "a whole-GPU job started beside two half-GPU jobs"
    (records / "release").write_text("")
    for job in (*halves, whole):
        assert job.wait(timeout=30) == 0
    assert sorted(share for _, share in started(records).values()) == ["0.5", "0.5", "1"]


def test_killed_job_frees_its_slot(tmp_path):
    """k = 1 on one GPU: a second job waits until the first is killed with SIGKILL, then takes the GPU. The
    wrapper execs the job, so the job's pid is the wrapper's."""
    records = tmp_path / "records"
    records.mkdir()
    env = wrapper_env(tmp_path, "0")
    first = start_job(records, env, UNITS_PER_GPU)
    assert wait_for(lambda: first.pid in started(records))
    second = start_job(records, env, UNITS_PER_GPU)
    time.sleep(1.0)
    assert set(started(records)) == {first.pid}, "the second job started while the first held the GPU"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert wait_for(lambda: second.pid in started(records), 10), "the killed job's slot was not freed"
    assert "waiting for 24 free units on one of GPUs 0" in "".join(_stderr_so_far(second, records))


def _stderr_so_far(job: subprocess.Popen, records: Path) -> list[str]:
    (records / "release").write_text("")
    _, err = job.communicate(timeout=30)
    return [err]


@pytest.mark.parametrize("devices", ["", "-1"])
def test_no_gpu_runs_the_command_unchanged(tmp_path, devices):
    """No visible GPU (CUDA_VISIBLE_DEVICES empty or hiding every GPU): the job runs at once, with the
    environment it had and no memory share; --units 0 (a config pinned to the CPU) does the same on GPUs."""
    records = tmp_path / "records"
    records.mkdir()
    (records / "release").write_text("")
    job = start_job(records, wrapper_env(tmp_path, devices), job_units(4))
    assert job.wait(timeout=30) == 0
    assert list(started(records).values()) == [(devices, "<unset>")]
    assert "no GPU visible" in job.stderr.read()

    for path in records.glob("*.started"):
        path.unlink()
    job = start_job(records, wrapper_env(tmp_path, "0,1"), 0)
    assert job.wait(timeout=30) == 0
    assert list(started(records).values()) == [("0,1", "<unset>")]
    assert job.stderr.read() == ""


def test_visible_gpus(tmp_path):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0, 2,3"}) == ["0", "2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-8f1c,MIG-2a"}) == ["GPU-8f1c", "MIG-2a"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]  # CUDA stops at the first invalid id
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\n"
    )
    (fake / "nvidia-smi").chmod(0o755)
    assert visible_gpus({"PATH": str(fake)}) == ["0", "1"]
    assert visible_gpus({"PATH": str(tmp_path / "empty")}) == []


def test_units_and_slot_directory(tmp_path):
    assert [job_units(k) for k in (1, 2, 3, 4, 6, 8)] == [24, 12, 8, 6, 4, 3]
    with pytest.raises(UserError, match="jobs per GPU must be one of"):
        job_units(5)
    assert slot_directory({"MMJSD_GPU_SLOT_DIR": str(tmp_path)}) == tmp_path
    assert slot_directory({"MMJSD_GPU_SLOT_DIR": str(tmp_path), "SLURM_JOB_ID": "42"}) == tmp_path / "slurm-42"


def test_bad_units_are_refused(tmp_path):
    command = [sys.executable, "-m", "mmjsd.gpu_slots", "--units", "25", "--", "true"]
    res = subprocess.run(command, env=wrapper_env(tmp_path, "0"), capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "--units must be between 0 and 24" in res.stderr


def test_memory_share_becomes_torchs_cap(monkeypatch):
    """The share gpu_slots passes is what resolve_device gives torch.cuda.set_per_process_memory_fraction, on the
    job's device; a whole GPU (share 1) or no share sets no cap, and a CPU job never touches CUDA."""
    import torch

    from mmjsd.core import runtime

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction", lambda fraction, device: calls.append((fraction, device))
    )
    monkeypatch.setenv("MMJSD_GPU_MEMORY_FRACTION", f"{job_units(4) / UNITS_PER_GPU:.6g}")
    assert runtime.resolve_device("auto") == torch.device("cuda")
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert calls == [(0.25, torch.device("cuda"))]
    monkeypatch.setenv("MMJSD_GPU_MEMORY_FRACTION", "1")
    runtime.resolve_device("cuda")
    monkeypatch.delenv("MMJSD_GPU_MEMORY_FRACTION")
    runtime.resolve_device("cuda")
    assert calls == [(0.25, torch.device("cuda"))]
    with pytest.raises(UserError, match="MMJSD_GPU_MEMORY_FRACTION must be a number in"):
        runtime.gpu_memory_fraction({"MMJSD_GPU_MEMORY_FRACTION": "a quarter"})


def dry_run(tmp_path: Path, devices: str, *args: str) -> str:
    """`snakemake -n` through the local profile with ``devices`` as the visible GPUs."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=devices)
    env.pop("SNAKEMAKE_PROFILE", None)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *args,
        "-n",
        "--workflow-profile",
        "workflow/profiles/local",
        "--directory",
        str(tmp_path / "wd"),
    ]
    res = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def job_blocks(output: str) -> dict[str, tuple[str, str]]:
    """First output of each job in a dry run -> (its resources line, its shell command)."""
    jobs = {}
    for block in re.split(r"\n(?=\s*rule \w+:)", output):
        first_output = re.search(r"^\s*output: ([^,\n]+)", block, re.M)
        shell = re.search(r"^Shell command: (.+)$", block, re.M)
        if first_output and shell:
            jobs[first_output.group(1)] = (re.search(r"^\s*resources: (.+)$", block, re.M).group(1), shell.group(1))
    return jobs


def test_workflow_pins_gpu_jobs_to_slots_of_their_dataset(tmp_path):
    """Dry run of the paper config with 4 injected GPUs: each GPU job starts through the slot wrapper with the units
    of its dataset (MST: 4 jobs per GPU, 6 units; CelebA: 1, the whole GPU's 24), CPU jobs do not, and the local
    profile caps the running GPU jobs at the 4 GPUs' 96 units (24 without a GPU). MST training jobs form the
    group that SLURM packs. The CI preset pins the CPU: 0 units, which the wrapper passes straight through, and
    no group."""
    mst_train = "results/runs/corrected/mnist_svhn_text/mmjsd/seed0/model.pt"
    celeba_train = "results/runs/corrected/celeba/mmjsd-ms/seed0/model.pt"
    mst_eval = "results/runs/corrected/mnist_svhn_text/mmjsd/seed0/metrics/coherence.json"
    output = dry_run(tmp_path, "0,1,2,3", mst_eval, celeba_train, "--configfile", "config.yaml")
    assert "Group job train_4_per_gpu" in output  # MST training jobs are packed on SLURM; CelebA's are not
    assert re.findall(r"Group job (\w+)", output) == ["train_4_per_gpu"]
    jobs = job_blocks(output)
    expected_units = {
        mst_train: 6,
        celeba_train: 24,
        mst_eval: 6,
        "results/classifiers/mnist_svhn_text/mnist/model.pt": 6,
    }
    for output, units in expected_units.items():
        resources, shell = jobs[output]
        assert f"gpu_units={units}," in resources, (output, resources)
        assert shell.startswith(f"python -m mmjsd.gpu_slots --units {units} -- python -m mmjsd."), shell
    cpu_job = jobs["results/datasets/mnist_svhn_text.h5"]
    assert "gpu_units" not in cpu_job[0] and cpu_job[1].startswith("python -m mmjsd.build_dataset")

    output = dry_run(tmp_path, "0,1,2,3", mst_train, "--configfile", "config.yaml", "workflow/presets/ci.yaml")
    assert "Group job" not in output
    jobs = job_blocks(output)
    assert "gpu_units=0," in jobs[mst_train][0]
    assert jobs[mst_train][1].startswith("python -m mmjsd.gpu_slots --units 0 -- python -m mmjsd.train")

    for devices, cap in (("0,1,2,3", 96), ("", 24)):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=devices, PYTHONPATH=str(ROOT / "src"))
        script = (
            "from snakemake.profiles import ProfileConfigFileParser; "
            "print(dict(ProfileConfigFileParser().parse(open('workflow/profiles/local/profile.yaml')))['resources'])"
        )
        res = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert res.stdout.strip() == f"['gpu_units={cap}']", res.stdout + res.stderr
