# sms-appliance: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow test-reliability test-deps-reliability bench bench-deps bench-kannel clean test-deps-sim test-deps-browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The demo's state (queue, journal, admin password) is kept in .demo/: a message queued when
# you stop it is still there, and goes out, when you start it again.
run: $(STAMP)
	$(VENV)/bin/sms-appliance run --demo --state-dir .demo

# test-deps-image (image/image.mk) apt-installs the few tools the image tests call, if missing;
# test-deps-sim the Debian AT client (gammu) the simulator tests drive and libfaketime (the
# daemon under a stepped wall clock, tests/test_clock_step_daemon.py); test-deps-browser
# Debian's chromium and chromedriver for the dashboard's browser test.
test: $(STAMP) test-deps-image test-deps-sim test-deps-browser
	$(PY) -m pytest -q -p no:cacheprovider

# The dashboard's browser test drives Debian's chromium through Debian's chromedriver
# (nothing is downloaded from elsewhere); installed only when missing (root, apt).
test-deps-browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing: chromium chromium-driver"; \
	  for i in 1 2 3; do \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
	      install -y -q --no-install-recommends chromium chromium-driver >/dev/null && break; \
	    echo "apt-get failed (attempt $$i), retrying" >&2; sleep $$((i * 10)); \
	  done; \
	fi

test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow

# kill -9, power loss, soak and full disk (tests/test_reliability.py), each printing figures;
# about 6 minutes on 2 cores. The power-cut shim is built with cc; the full-disk test mounts a
# small tmpfs when it runs as root, else it injects ENOSPC through the shim.
test-reliability: $(STAMP) test-deps-reliability
	$(PY) -m pytest -q -p no:cacheprovider -s -m reliability tests/test_reliability.py

test-deps-reliability:
	@command -v cc >/dev/null 2>&1 || apt-get -o DPkg::Lock::Timeout=900 install -y gcc libc6-dev

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/ingest.py
	$(PY) bench/modems.py
	$(PY) bench/uplink.py
	$(PY) bench/uplink.py --e2e
	$(PY) bench/uplink.py --backlog
	$(PY) bench/dispatch.py
	$(PY) bench/batch_memory.py
	$(PY) bench/demo_idle.py

	$(PY) bench/metrics.py

# bench/vs_kannel.py runs Kannel (bearerbox, smsbox, fakesmsc) and wrk beside the appliance.
bench-deps:
	@command -v wrk >/dev/null && command -v bearerbox >/dev/null && command -v strace >/dev/null \
	  && command -v eatmydata >/dev/null \
	  && test -x /usr/lib/kannel/test/fakesmsc \
	  || apt-get -o DPkg::Lock::Timeout=900 install -y kannel kannel-extras wrk strace eatmydata \
	  || (apt-get update && apt-get -o DPkg::Lock::Timeout=900 install -y kannel kannel-extras wrk strace eatmydata)

bench-kannel: $(STAMP) bench-deps
	$(PY) bench/vs_kannel.py
	$(PY) bench/vs_kannel.py --e2e

clean:
	rm -rf $(VENV) build dist *.egg-info

# Image, systemd and Ansible targets (test-image, shellcheck, ...) live beside the scripts.
-include image/image.mk

# apt_missing comes from image/image.mk: installs only what is missing, no apt call otherwise.
test-deps-sim:
	$(call apt_missing,gammu:gammu faketime:faketime)
