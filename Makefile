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

# The tests use real components from Debian: OpenSSH (sshd, ssh-keygen, ssh-agent), sudo, cron,
# logrotate, rsyslog, gpg, sqlite3, openssl, a headless Chromium, and zsh and fish (completion).
# We run as root, so install whichever is missing (command or file -> package below;
# rsyslog-openssl: its TLS driver).
TEST_TOOLS := /usr/sbin/sshd:openssh-server ssh-keygen:openssh-client sudo:sudo crontab:cron \
	zsh:zsh fish:fish \
	curl:curl ping:iputils-ping traceroute:traceroute /usr/bin/pip3:python3-pip \
	logrotate:logrotate rsyslogd:rsyslog gpg:gnupg sqlite3:sqlite3 openssl:openssl chromium:chromium \
	/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so:rsyslog-openssl
sshd-deps:
	@missing=""; for pair in $(TEST_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -e $$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing from Debian:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing and cannot be installed here:$$missing (the tests that need them are skipped)"; fi; \
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
