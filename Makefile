# Two commands do all setup on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck clean demo-stop sshd-deps

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/setup.py --reset
	demo/botctl start
	$(BIN)/runbook validate
	$(BIN)/runbook run health-check -i inventories/demo.yaml --yes; rc=$$?; demo/botctl stop; exit $$rc
	$(BIN)/runbook audit verify

demo-stop:
	demo/botctl stop

# The SSH tests need a real OpenSSH server (and sudo for the sudo cases); we run as root, so
# install them from Debian when missing.
sshd-deps:
	@if [ ! -x /usr/sbin/sshd ] || ! command -v sudo >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client sudo >/dev/null; \
	  else echo "openssh-server missing and cannot be installed here: SSH tests will be skipped"; fi; \
	fi

test: $(STAMP) sshd-deps
	$(BIN)/ruff check runner tests demo bench
	$(BIN)/ruff format --check runner tests demo bench
	$(BIN)/mypy runner
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check runner tests demo bench
	$(BIN)/ruff format --check runner tests demo bench

typecheck:
	$(BIN)/mypy runner

clean:
	rm -rf $(VENV) .demo .runbook
