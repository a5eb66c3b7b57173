"""Raw-data manifests: which raw files a dataset build may read, and their sha256.

The acquisition step writes one manifest per raw dataset (mnist, svhn, celeba); the
builders record the hashes of what they actually read and refuse to build when a raw
file changed after it was acquired, so provenance in the HDF5 file is never stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmjsd.core.errors import UserError
from mmjsd.core.io import write_json

RAW_DATASETS = ("mnist", "svhn", "celeba")


def write_manifest(
    path: str | Path, dataset: str, source: str, raw_dir: str | Path, files: dict[str, str], counts: dict[str, int]
) -> None:
    write_json(path, {"dataset": dataset, "source": source, "raw_dir": str(raw_dir), "files": files, "counts": counts})


def read_manifest(path: str | Path, dataset: str) -> dict:
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read raw-data manifest {path} ({err}); rerun the acquisition step") from err
    if manifest.get("dataset") != dataset:
        raise UserError(f"{path} is the manifest of {manifest.get('dataset')!r}, expected {dataset!r}")
    return manifest


def check_sources(manifest_path: str | Path, manifest: dict, read: dict[str, str]) -> None:
    """Every file a builder read must have the sha256 the manifest recorded at acquisition."""
    for name, digest in read.items():
        recorded = manifest["files"].get(name)
        if recorded != digest:
            raise UserError(
                f"raw file {Path(manifest['raw_dir']) / name} changed since it was acquired "
                f"(manifest {manifest_path} has sha256 {recorded}, the file now has {digest}); "
                "rerun the acquisition (snakemake -R acquire_raw) or restore the file"
            )
