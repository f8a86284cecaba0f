# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   replay the shipped DNS-lookup recording
#   make test   run the whole test suite
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# The shipped recording: a DNS lookup that is truncated over UDP and retried over
# TCP (examples/dns-lookup.sh made it). It lasts a fraction of a second: play slowly.
DEMO_CMD ?= $(BIN)/autotrace replay --speed 0.1 recordings/dns-lookup

.PHONY: demo test tools lint bench clean

# The demo needs autotrace and its runtime dependencies only: no test tools
# to wait for before it plays. The tests add their extras (pytest, ruff, mypy).
$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.test-installed: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(DEMO_CMD)

# The tools the tests drive (strace, tcpdump, tmux, asciinema, ...): installed
# with apt-get when run as root, else named in one line.
tools:
	bash .ci/install-tools

# Two tests at a time (most of them wait on real processes, not the CPU), then
# the ones that measure delays or load, one at a time (marker "alone").
test: tools $(BIN)/.test-installed
	$(BIN)/python -m pytest -n 2 -m "not alone"
	$(BIN)/python -m pytest -m alone

lint: $(BIN)/.test-installed
	$(BIN)/ruff check autotrace tests benchmarks examples
	$(BIN)/mypy autotrace

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info
