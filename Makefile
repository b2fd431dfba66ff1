# sms-appliance: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow bench bench-deps bench-kannel clean test-deps-sim

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sms-appliance run --demo

# test-deps-image (image/image.mk) apt-installs the few tools the image tests call, if missing;
# test-deps-sim the Debian AT client (gammu) the simulator tests drive.
test: $(STAMP) test-deps-image test-deps-sim
	$(PY) -m pytest -q -p no:cacheprovider

test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/ingest.py
	$(PY) bench/modems.py
	$(PY) bench/uplink.py
	$(PY) bench/uplink.py --e2e
	$(PY) bench/uplink.py --backlog
	$(PY) bench/dispatch.py

# bench/vs_kannel.py runs Kannel (bearerbox, smsbox, fakesmsc) and wrk beside the appliance.
bench-deps:
	@command -v wrk >/dev/null && command -v bearerbox >/dev/null \
	  && test -x /usr/lib/kannel/test/fakesmsc \
	  || apt-get -o DPkg::Lock::Timeout=900 install -y kannel kannel-extras wrk \
	  || (apt-get update && apt-get -o DPkg::Lock::Timeout=900 install -y kannel kannel-extras wrk)

bench-kannel: $(STAMP) bench-deps
	$(PY) bench/vs_kannel.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# Image, systemd and Ansible targets (test-image, shellcheck, ...) live beside the scripts.
-include image/image.mk

# apt_missing comes from image/image.mk: installs only what is missing, no apt call otherwise.
test-deps-sim:
	$(call apt_missing,gammu:gammu)
