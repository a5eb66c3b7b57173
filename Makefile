# Quick start (README): `make demo` runs the whole pipeline on synthetic data; `make test` runs the fast tests,
# `make test-all` every test (what CI runs), `make lint` the linters. All create the virtual environment in .venv
# first (Python >= 3.11).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all
# The fast default subset: unit and stage tests. Whole-workflow tests, tests that take minutes and the SLURM tests
# carry the markers `workflow` and `slurm` (pyproject.toml) and run only in `make test-all`.
FAST_TESTS := not workflow and not slurm

.PHONY: install demo test test-all lint clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

demo: install
	$(BIN)/python -m snakemake --cores $(CORES) --configfile workflow/presets/demo.yaml --rerun-incomplete \
		--report-after-run --report results/report.html
	@echo "Done. Read results/summary.md first; the HTML report is results/report.html."

test: install
	$(BIN)/python -m pytest -m "$(FAST_TESTS)"

test-all: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m snakemake --lint

clean-results:
	rm -rf results/raw results/datasets results/runs results/classifiers results/checkpoints results/tables results/figures results/logs results/benchmarks results/summary.md results/report.html .snakemake
