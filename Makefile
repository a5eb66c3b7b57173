# Quick start (README): `make demo` runs the whole pipeline on synthetic data; `make test` runs the tests.
# Both create the virtual environment in .venv first (Python >= 3.11).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all

.PHONY: install demo test lint clean-results

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
	$(BIN)/python -m pytest

lint: install
	$(BIN)/python -m snakemake --lint

clean-results:
	rm -rf results/raw results/datasets results/runs results/classifiers results/checkpoints results/tables results/figures results/logs results/benchmarks results/summary.md results/report.html .snakemake
