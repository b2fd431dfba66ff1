# sms-appliance: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow bench clean

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

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/ingest.py
	$(PY) bench/modems.py
	$(PY) bench/uplink.py
	$(PY) bench/uplink.py --e2e
	$(PY) bench/uplink.py --backlog
	$(PY) bench/dispatch.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# Image, systemd and Ansible targets (test-image, shellcheck, ...) live beside the scripts.
-include image/image.mk
