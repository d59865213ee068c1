# relaykit developer commands. `make demo` and `make test` work on a fresh Debian 12.
VENV   ?= .venv
PY     := $(VENV)/bin/python
NETNS  := test/netns.sh

.PHONY: demo test test-fast test-slow bench install startcache lint clean

# Debian packages + the virtualenv with the project (editable) and its test tools.
$(VENV)/.installed: setup.py target/install.sh
	sh test/install-test-deps.sh
	PREFIX=$(VENV) EDITABLE=1 EXTRAS=test sh target/install.sh  # last: pip alone would drop setup's -S
	touch $@

install: $(VENV)/.installed

# A real private Postfix, local capture relays, mail from several senders, and a table of
# which relay received what with which credentials.
demo: install
	$(NETNS) $(PY) demo/demo.py

# The start-up cache (target/relaykit/edges/startcache.py) written again before the tests
# and the benchmarks: the tree may have changed since the install wrote it, and they run
# what the image runs.
startcache: install
	$(PY) -m relaykit.edges.startcache >/dev/null

# Everything CI runs: unit, integration (real postconf/postmap), e2e (real SMTP), slow.
test: startcache
	$(NETNS) $(PY) -m pytest -m "" --durations=15 $(PYTEST_ARGS)

test-fast: startcache
	$(NETNS) $(PY) -m pytest -m "not slow and not e2e and not image" $(PYTEST_ARGS)

test-slow: startcache
	$(NETNS) $(PY) -m pytest -m slow $(PYTEST_ARGS)

# Benchmarks (README.md, "Benchmarks"): prints a table, writes bench/results.md and results.png.
$(VENV)/.bench-installed: $(VENV)/.installed setup.py
	PREFIX=$(VENV) EDITABLE=1 EXTRAS=bench sh target/install.sh  # pip alone would drop setup's -S
	touch $@

bench: startcache $(VENV)/.bench-installed
	$(NETNS) $(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info target/*.egg-info
