# Tongban: `make run` starts a whole node, `make test` runs the whole suite.
# Both set themselves up on a machine that has only python3 and make.

PY ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install run nodes test lint format typecheck bench-outbox bench bench-node fuzz faults security clean

$(UV):
	@echo "==> bootstrapping uv into $(TOOLS)/"
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock shared/pyproject.toml services/*/pyproject.toml
	@echo "==> installing the workspace into $(VENV)/ (uv sync --frozen)"
	$(UV) sync --frozen --all-packages --python $(PY)
	@touch $@

install: $(VENV)/.synced

run: install
	$(BIN)/tongban node up

# Central 100000 and regional 440300 and 310000 on this machine, enrolled in the directory.
nodes: install
	$(BIN)/tongban nodes up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

# The long fuzzing run: about 1,000 generated requests per service, direct and through the
# gateway (make test runs a few per operation).
fuzz: install
	TONGBAN_FUZZ_EXAMPLES=$${TONGBAN_FUZZ_EXAMPLES:-100} $(BIN)/pytest tests/test_fuzz.py -s

# The whole security suite against a node started as `make run` starts it: object-level
# and function-level authorization, mass assignment, oversized bodies and documents, lying
# document types, every injection string in every text field, rate-limit bursts (make test
# runs a sample of each).
security: install
	TONGBAN_SECURITY_FULL=1 $(BIN)/pytest tests/security tests/test_token_matrix.py

# The long fault run: broker, service, PostgreSQL and webhook faults under a larger load
# (make test runs a dozen journeys per fault).
faults: install
	TONGBAN_FAULTS_SIZE=$${TONGBAN_FAULTS_SIZE:-100} $(BIN)/pytest tests/faults -s

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/outbox_latency.py
	$(BIN)/python bench/relay_throughput.py

# The whole journey through a node started as `make run` does, at increasing rates
# (BENCH_ARGS, e.g. BENCH_ARGS="--rates 1,2 --seconds 10").
BENCH_ARGS ?=
bench-node: install
	$(BIN)/python bench/node/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .state
