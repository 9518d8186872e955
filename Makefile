# pykes — two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pip shows what it fetches; modules are byte-compiled when first imported, not all at
# install time (most of rich's pygments never is: ~1 s of `make run`).
PIP    := $(BIN)/python -m pip install --progress-bar on --no-compile
# One stamp per set of dependencies: `make run` installs what the server needs, `make
# test` adds the test toolchain, `make bench` the bench's. A newer pyproject.toml
# makes every stamp stale.
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP    := $(VENV)/.installed-test
BENCH_STAMP   := $(VENV)/.installed-bench

.PHONY: install run test lint bench proto clean

install: $(TEST_STAMP)

# The venv without ensurepip (which installs and byte-compiles pip and setuptools: 8–13 s
# of a busy 2-core machine): the host's pip (22.3+, `--python`) puts pip into it. If
# that fails, the usual way.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --no-compile --quiet pip \
		|| { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing pykes and its runtime dependencies into $(VENV) …"
	$(PIP) -e .
	touch $@

# The test extra includes the runtime dependencies: the runtime stamp is fresh too.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing pykes with the test toolchain into $(VENV) (a few minutes the first time) …"
	$(PIP) -e '.[test]'
	touch $@ $(RUNTIME_STAMP)

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[bench]'
	touch $@ $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/kes server --dev

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# make bench [BENCH_ARGS="--quick | --rows 'generate-*' | --profile | --compare A.json B.json"]
BENCH_ARGS ?=
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The KMS API's protobuf modules from proto/ (the pinned protoc of the test extra); the
# generated files are committed, tests/test_kms_messages.py checks they are current.
proto: $(TEST_STAMP)
	$(BIN)/python proto/generate.py src

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
