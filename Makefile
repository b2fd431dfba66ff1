# sms-appliance: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow test-reliability test-deps-reliability bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sms-appliance run --demo

# test-deps-image (image/image.mk) apt-installs the few tools the image tests call, if missing.
test: $(STAMP) test-deps-image
	$(PY) -m pytest -q -p no:cacheprovider

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

clean:
	rm -rf $(VENV) build dist *.egg-info

# Image, systemd and Ansible targets (test-image, shellcheck, ...) live beside the scripts.
-include image/image.mk
