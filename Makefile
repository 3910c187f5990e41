# Two commands for a fresh machine: `make repro` (the main job) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.frbench-installed
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install repro test test-slow bench gpu-smoke clean-venv test-photos

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) scripts/install_deps.py $(PY)   # uv with pip's package sources (~3.5x faster), else pip
	$(PY) -c "import torch, torchvision, lpips, pytorch_fid, facenet_pytorch, pytorch_msssim, dvc, mlflow, dlib"
	$(PY) scripts/fetch_test_photos.py cache/test-photos || echo "warning: test photos not fetched; tests needing them skip (make test-photos)"
	touch $(STAMP)

# real portraits for the metric tests (face_recognition sdist; never committed)
test-photos:
	$(PY) scripts/fetch_test_photos.py cache/test-photos

repro: $(STAMP)
	. $(VENV)/bin/activate && dvc repro

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m bench.degrade
	$(PY) -m bench.evaluate
	$(PY) -m bench.train

# paper-size training steps, the evaluator on the GPU and a 2-step paper pipeline in < 10 min;
# writes gpu_smoke.json (docs/paper-profile.md). Without CUDA it says so and exits 0.
gpu-smoke: $(STAMP)
	$(PY) -m bench.gpu_smoke --out gpu_smoke.json

clean-venv:
	rm -rf $(VENV)

# Mutation testing (not CI): a seeded sample of mutants of metrics/, degradations/ and
# core/seeding.py against their tests; prints `mutation score: killed/total` and the survivors.
.PHONY: mutation
mutation: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) scripts/mutation.py

.PHONY: check-rerun report compare
check-rerun: $(STAMP)
	. $(VENV)/bin/activate && scripts/check_rerun.sh

compare: $(STAMP)
	. $(VENV)/bin/activate && frbench compare

report: $(STAMP)   # the report stage (and whatever it depends on that is out of date)
	. $(VENV)/bin/activate && dvc repro report
