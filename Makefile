# flowscope: `make demo` to try it, `make test` to run the whole suite (installs what it needs).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBS := tcpdump tshark wireshark-common snmpd snmp softflowd nfdump pmacct dnsmasq dnsutils iproute2 iputils-ping curl netcat-openbsd libndpi-bin
PORT ?= 3000
DEMO_DATA ?= $(CURDIR)/data/demo

.PHONY: venv deps demo test bench clean conformance-deps

$(BIN)/flowscope: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/flowscope

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

demo: venv
	@mkdir -p $(DEMO_DATA)
	@$(BIN)/flowscope user list --data-dir $(DEMO_DATA) | grep -q '^admin' || \
	  $(BIN)/flowscope user add admin --role admin --data-dir $(DEMO_DATA) >/dev/null
	@TOKEN=$$($(BIN)/flowscope token create admin --data-dir $(DEMO_DATA) | tail -1); \
	echo ""; \
	echo "MCP URL:     http://127.0.0.1:$(PORT)/mcp"; \
	echo "Admin token: $$TOKEN"; \
	echo ""; \
	echo "Add it to Claude Code:"; \
	printf "  claude mcp add-json flowscope '%s' --scope user\n" \
	  "{\"type\":\"http\",\"url\":\"http://127.0.0.1:$(PORT)/mcp\",\"headers\":{\"Authorization\":\"Token $$TOKEN\"}}"; \
	echo ""; \
	exec $(BIN)/flowscope serve --data-dir $(DEMO_DATA) --pcap demo/demo.pcap --listen 127.0.0.1:$(PORT)

# In CI (CI=true) the tests run in random order (pytest-random-order; the seed is printed, rerun
# with PYTEST_ARGS=--random-order-seed=N) and a missing corpus file or tool fails instead of skipping.
RANDOM_ORDER := $(if $(filter true,$(CI)),-p random_order --random-order,)

test: venv deps
	$(BIN)/python -m pytest -q -ra $(RANDOM_ORDER) $(PYTEST_ARGS)

# The MCP conformance suite (tests/conformance) needs Node 22: both come from npm, into build/.
CONFORMANCE := build/conformance
$(CONFORMANCE)/node_modules/.bin/conformance: tests/conformance/package.json
	mkdir -p $(CONFORMANCE)
	cp tests/conformance/package.json $(CONFORMANCE)/package.json
	cd $(CONFORMANCE) && npm install --no-audit --no-fund --loglevel=error
	touch $@

conformance-deps: $(CONFORMANCE)/node_modules/.bin/conformance

test: conformance-deps

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data build *.egg-info
