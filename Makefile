# ecs-autopilot: the two commands (`make demo`, `make test`) plus build, deploy, lint, bench.
#
# Every target creates what it needs on a fresh machine:
#   $(VENV)          Python 3.13 + the project (editable) + dev tools, pinned by $(LOCK)
#   $(SAM_VENV)      aws-sam-cli in its own venv (it pins boto3/pydantic), pinned by $(SAM_LOCK)
#   $(CHECKOV_VENV)  checkov in its own venv (heavy pins; only `make lint` / `make checkov` need it)
# Stamp files make re-runs fast; they are rebuilt when pyproject.toml or a lock file changes.
# Override the locations to check the setup from scratch without touching yours:
#   make test VENV=/tmp/v SAM_VENV=/tmp/v-sam

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV         ?= .venv
SAM_VENV     ?= .venv-sam
CHECKOV_VENV ?= .venv-checkov
BUILD        ?= build
LOCK         ?= constraints.txt
SAM_LOCK     ?= constraints-sam.txt
CHECKOV_LOCK ?= constraints-checkov.txt
SAM_VERSION  ?= 1.170.0
PYTEST_WORKERS ?= 2
PYTEST_ARGS  ?=
# bandit and checkov fail on any finding: each accepted one is suppressed with its reason
# (.checkov.yaml; [tool.bandit] in pyproject.toml and `# nosec` comments that say why).
CHECKOV_SOFT_FAIL ?=
BANDIT_SOFT_FAIL ?=

PY      := $(VENV)/bin/python
SAM     := $(SAM_VENV)/bin/sam
STAMP   := $(VENV)/.autopilot-installed
SAM_STAMP := $(SAM_VENV)/.autopilot-installed
CHECKOV_STAMP := $(CHECKOV_VENV)/.autopilot-installed
ABS_SAM_VENV := $(abspath $(SAM_VENV))
ABS_VENV := $(abspath $(VENV))
ABS_BUILD := $(abspath $(BUILD))
# `sam build` for python3.13 needs a real python3.13 first on PATH: the project venv's.
BUILD_PATH := $(ABS_VENV)/bin:$(PATH)

# A working Python 3.13: `python3.13` only if it really runs (a pyenv shim of another version does
# not), else the newest ~/.pyenv/versions/3.13*/bin/python3.13. Override with PYTHON313=/path.
PYTHON313 ?= $(shell if python3.13 -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; \
	then command -v python3.13; \
	else ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V | tail -n 1; fi)

CODE := layers tools functions tests bench conftest.py

# The region sam deploys to. The AWS CLI v2 (and the autopilot CLI) read --region, then AWS_REGION, then
# AWS_DEFAULT_REGION, then the profile; SAM CLI reads --region, samconfig.toml, AWS_DEFAULT_REGION and the profile
# but never AWS_REGION. Passing AWS_REGION on makes `AWS_REGION=eu-west-1 make deploy` deploy where it says.
REGION ?= $(AWS_REGION)
SAM_REGION = $(if $(REGION),--region $(REGION))

.PHONY: help test demo local build layer-bytecode deploy deploy-guided lint bench soak venv sam-venv checkov-venv \
	checkov lock clean \
	ruff mypy imports bandit pytest iam-coverage demo-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# ------------------------------------------------------------------------------------ environments
define need_python313
	@if [ -z "$(PYTHON313)" ]; then \
		echo "error: Python 3.13 not found. Install it (e.g. 'pyenv install 3.13') or run" >&2; \
		echo "       make $@ PYTHON313=/path/to/python3.13" >&2; exit 1; fi
	@"$(PYTHON313)" -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version' \
		|| { echo "error: $(PYTHON313) is not Python 3.13" >&2; exit 1; }
endef

$(STAMP): pyproject.toml $(LOCK)
	$(need_python313)
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON313)"; "$(PYTHON313)" -m venv $(VENV); }
	@echo "installing the project and its dev tools into $(VENV) (pinned by $(LOCK))"
	@$(PY) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[dev]'
	@touch $@

$(SAM_STAMP): $(SAM_LOCK)
	$(need_python313)
	@test -x $(SAM_VENV)/bin/python || { echo "creating $(SAM_VENV)"; "$(PYTHON313)" -m venv $(SAM_VENV); }
	@echo "installing aws-sam-cli $(SAM_VERSION) into $(SAM_VENV) (pinned by $(SAM_LOCK))"
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(SAM_LOCK) \
		aws-sam-cli==$(SAM_VERSION)
	@touch $@

$(CHECKOV_STAMP): $(CHECKOV_LOCK)
	$(need_python313)
	@test -x $(CHECKOV_VENV)/bin/python || "$(PYTHON313)" -m venv $(CHECKOV_VENV)
	@echo "installing checkov into $(CHECKOV_VENV) (pinned by $(CHECKOV_LOCK))"
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(CHECKOV_LOCK) checkov
	@touch $@

venv: $(STAMP)  ## the project venv only
sam-venv: $(SAM_STAMP)  ## the aws-sam-cli venv only
checkov-venv: $(CHECKOV_STAMP)

lock:  ## re-pin every venv from what is installed now (after changing a dependency)
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^#' > $(LOCK)
	$(SAM_VENV)/bin/python -m pip freeze --disable-pip-version-check | grep -v '^#' > $(SAM_LOCK)
	@if [ -x $(CHECKOV_VENV)/bin/python ]; then \
		$(CHECKOV_VENV)/bin/python -m pip freeze --disable-pip-version-check | grep -v '^#' > $(CHECKOV_LOCK); fi

# ------------------------------------------------------------------------------------ the two commands
# The demo runs once inside pytest (tests/integration/test_demo.py asserts every scenario's expectations).
test: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)  ## everything: ruff, mypy, imports, bandit, checkov, pytest (incl. the demo) + IAM coverage
	@$(MAKE) --keep-going ruff mypy imports bandit checkov VENV=$(VENV)
	@$(MAKE) pytest iam-coverage VENV=$(VENV) SAM_VENV=$(SAM_VENV)
	@echo "make test: all green"

demo: $(STAMP)  ## the local demonstration on an embedded AWS emulator (no AWS account)
	$(VENV)/bin/autopilot demo

local: $(STAMP)  ## the stack's table and queues on an embedded emulator, to try the CLI without an AWS account
	$(VENV)/bin/autopilot local

# ------------------------------------------------------------------------------------ test steps
ruff:
	$(PY) -m ruff check $(CODE)

mypy:
	$(PY) -m mypy
	@# Each function's app.py is its own top-level module `app`: check them one at a time.
	@for f in functions/*/app.py; do echo "mypy $$f"; $(PY) -m mypy --no-error-summary $$f; done
	$(PY) -m mypy --explicit-package-bases --follow-imports=silent bench tests/aws_calls.py tests/template \
		tests/unit/test_ports.py conftest.py

imports:
	$(VENV)/bin/lint-imports --no-cache

# Phase 1: the suite in parallel; the recorder (tests/aws_calls.py) writes $(BUILD)/aws-calls.json.
# Phase 2: the IAM coverage check reads it (it needs every function's calls, which only exist after
# all integration tests ran, whichever worker ran them).
pytest:
	@mkdir -p $(BUILD) && rm -f $(BUILD)/aws-calls.json
	AUTOPILOT_SAM_VENV=$(ABS_SAM_VENV) AUTOPILOT_BUILD_DIR=$(ABS_BUILD) \
		$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not iam_coverage" $(PYTEST_ARGS)

iam-coverage:
	AUTOPILOT_SAM_VENV=$(ABS_SAM_VENV) AUTOPILOT_BUILD_DIR=$(ABS_BUILD) \
		$(PY) -m pytest -p no:xdist -m iam_coverage -q tests/template/test_iam.py

# The demo as the console script, writing machine-readable results (not part of `make test`).
demo-check:
	@mkdir -p $(BUILD)
	@if $(VENV)/bin/autopilot demo --list >/dev/null 2>&1; then \
		echo "autopilot demo --json > $(BUILD)/demo.json"; \
		$(VENV)/bin/autopilot demo --json > $(BUILD)/demo.json; \
	else echo "skipping the demo: 'autopilot demo --list' is not available yet"; fi

# ------------------------------------------------------------------------------------ SAM
build: $(STAMP) $(SAM_STAMP)  ## sam build (arm64, python3.13; no Docker needed) + bytecode; prints the layer's size
	PATH="$(BUILD_PATH)" $(SAM) build --cached --parallel
	@$(MAKE) layer-bytecode VENV=$(VENV)
	@echo "AutopilotLayer: $$(du -sb .aws-sam/build/AutopilotLayer/python | awk '{printf "%.1f MB", $$1/1e6}') unpacked," \
		"$$(find .aws-sam/build/AutopilotLayer/python -type f | wc -l) files (Lambda allows 250 MB for function + layers)"

# sam build ships sources only, and Lambda cannot write __pycache__ under /opt or /var/task: without this,
# every cold start compiles pydantic, Powertools and autopilot again (about 250 ms on a 2-vCPU x86_64 machine,
# bench/bench_cold_start.py). unchecked-hash .pyc files stay valid whatever mtimes the zip round trip leaves.
SAM_BUILD ?= .aws-sam/build
layer-bytecode:  ## precompile the built layer and functions for python3.13 (run by make build)
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(SAM_BUILD)/AutopilotLayer/python \
		$(wildcard $(SAM_BUILD)/*Function)

deploy-guided: build  ## first deploy: sam deploy --guided (asks for the parameters, saves them in samconfig.toml)
	$(SAM) deploy --guided $(SAM_REGION)

deploy: build  ## sam deploy with samconfig.toml (needs AWS credentials; first time: make deploy-guided)
	$(SAM) deploy $(SAM_REGION)

# ------------------------------------------------------------------------------------ lint, bench
lint: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)  ## ruff, mypy, import boundaries, cfn-lint, sam validate --lint, bandit, checkov
	@$(MAKE) --keep-going ruff mypy imports VENV=$(VENV)
	$(VENV)/bin/cfn-lint template.yaml templates/member-account.yaml
	$(SAM) validate --lint --template template.yaml
	@$(MAKE) bandit checkov

bandit: $(STAMP)
	$(VENV)/bin/bandit -q -c pyproject.toml -r layers tools functions $(BANDIT_SOFT_FAIL)

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --config-file .checkov.yaml \
		-f template.yaml -f templates/member-account.yaml $(CHECKOV_SOFT_FAIL)

# The soak (bench/soak): 500 services in 5 clusters and 50 standalone families for 24 simulated hours, faults on
# every call, invariants checked as it goes (exit 1 on a violation); then the reconciler's run at 1,000 and 5,000
# managed services. About 10 minutes on 2 cores. A small seeded run is part of `make test` (tests/unit/test_soak.py).
SOAK_ARGS ?= --services 500 --families 50 --hours 24 --seed 11
soak: $(STAMP)  ## the long seeded soak of the real handlers over a simulated estate (~10 min)
	@mkdir -p $(BUILD)
	$(PY) -m bench.soak.run $(SOAK_ARGS) --json $(BUILD)/soak.json
	$(PY) -m bench.soak.run --scale 1000 5000 --minutes 20 --json $(BUILD)/soak-scale.json

bench: $(STAMP)  ## benchmarks (cold start, AWS calls per decision); never fails on timings
	@mkdir -p $(BUILD)
	AUTOPILOT_BUILD_DIR=$(ABS_BUILD) $(PY) bench/run.py

clean:  ## remove build output (not the venvs)
	rm -rf $(BUILD) .aws-sam .pytest_cache .mypy_cache .ruff_cache
