# Every target installs what it needs: on a fresh machine only Python 3.11+ and make are required.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VAR := $(CURDIR)/var

# The embedded default: everything under var/ (engine DB, Airflow home and DB, outbox).
export POSTPURCHASE_VAR_DIR ?= $(VAR)

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench constraints clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing postpurchase with pinned dependencies into $(VENV) (about a minute the first time)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip>=24"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project (done by every other target when needed)

run: $(STAMP) ## Run the main job on the embedded default (SQLite, local Airflow, outbox); ONCE=1 exits after the summary
	@$(BIN)/postpurchase run $(if $(ONCE),--once)

test: $(STAMP) ## Lint, type-check and run the tests (PostgreSQL too when POSTPURCHASE_TEST_POSTGRES_URL is set)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@# pytest exits 5 when it collected no test: a suite that tests nothing must not pass.
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

lint: $(STAMP) ## Lint, type-check and check the import layers only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) ## Run the benchmarks and write BENCHMARKS.md
	$(BIN)/python -m benchmarks

constraints: ## Re-resolve dependencies into constraints.txt (after editing pyproject.toml)
	rm -rf $(VENV)-resolve && $(PYTHON) -m venv $(VENV)-resolve
	$(VENV)-resolve/bin/python -m pip install --quiet "pip>=24" && $(VENV)-resolve/bin/python -m pip install --quiet '.[dev]'
	{ echo "# Resolved versions for every install (make, CI, images): pip install -c constraints.txt"; \
	  echo "# Regenerate with 'make constraints' after changing dependencies in pyproject.toml."; \
	  $(VENV)-resolve/bin/python -m pip freeze --exclude-editable | grep -v '^postpurchase'; } > constraints.txt
	rm -rf $(VENV)-resolve

clean: ## Remove the virtualenv and everything under var/
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
