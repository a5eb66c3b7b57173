"""GPU slots (mmjsd.gpu_slots) on simulated devices: jobs are wrapper subprocesses with an injected
CUDA_VISIBLE_DEVICES, running a small Python job that records the device it was given and holds it until the
test releases it. Nothing here needs a GPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mmjsd.errors import UserError
from mmjsd.gpu_slots import UNITS_PER_GPU, job_units, slot_directory, visible_gpus

ROOT = Path(__file__).resolve().parents[1]

#: A job: records (CUDA_VISIBLE_DEVICES, memory share) in <records>/<pid>.started, holds its GPU until
#: <records>/release or <records>/<pid>.release exists, then writes <pid>.ended.
FAKE_JOB = """
import os, pathlib, sys, time
records = pathlib.Path(sys.argv[1])
env = os.environ
(records / f"{os.getpid()}.tmp").write_text(f"{env.get('CUDA_VISIBLE_DEVICES', '<unset>')}|{env.get('MMJSD_GPU_MEMORY_FRACTION', '<unset>')}")
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
    command = [sys.executable, "-m", "mmjsd.gpu_slots", "--units", str(units), "--poll-seconds", "0.1", "--",
               sys.executable, "-c", FAKE_JOB, str(records)]
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
        on_gpu = lambda gpu: [pid for pid, (device, _) in started(records).items() if device == gpu]
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
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\n")
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
