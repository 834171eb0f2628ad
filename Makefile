# Every target installs what it needs: on a fresh machine only Python 3.11+ and make are required.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VAR := $(CURDIR)/var

# The embedded default: everything under var/ (engine DB, Airflow home and DB, outbox).
export POSTPURCHASE_VAR_DIR ?= $(VAR)
LOCAL_AIRFLOW := AIRFLOW_HOME=$(VAR)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False

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

run: $(STAMP) ## Run the main job on the embedded default (SQLite, local Airflow, outbox)
	@echo "==> [1/3] migrating the engine's database"
	@$(BIN)/postpurchase db upgrade
	@echo "==> [2/3] migrating Airflow's metadata database under var/airflow"
	@$(LOCAL_AIRFLOW) $(BIN)/airflow db migrate > $(VAR)/airflow-migrate.log 2>&1 \
		|| { tail -20 $(VAR)/airflow-migrate.log; exit 1; }
	@echo "==> [3/3] running the housekeeping DAG once in local Airflow (log: var/housekeeping.log)"
	@$(LOCAL_AIRFLOW) $(BIN)/airflow dags test housekeeping > $(VAR)/housekeeping.log 2>&1 \
		|| { tail -40 $(VAR)/housekeeping.log; exit 1; }
	@grep -o "pruned [0-9]* rejected webhook(s)" $(VAR)/housekeeping.log | tail -1
	@$(BIN)/postpurchase db status

test: $(STAMP) ## Lint, type-check and run the tests (PostgreSQL too when POSTPURCHASE_TEST_POSTGRES_URL is set)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# pytest exits 5 when it collected no test: a suite that tests nothing must not pass.
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

lint: $(STAMP) ## Lint and type-check only
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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
