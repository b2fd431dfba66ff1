# sms-appliance: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow bench clean test-deps-browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sms-appliance run --demo

# test-deps-image (image/image.mk) apt-installs the few tools the image tests call, if missing.
test: $(STAMP) test-deps-image test-deps-browser
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

bench: $(STAMP)
	$(PY) bench/codec.py
	$(PY) bench/ingest.py
	$(PY) bench/modems.py
	$(PY) bench/uplink.py
	$(PY) bench/metrics.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# Image, systemd and Ansible targets (test-image, shellcheck, ...) live beside the scripts.
-include image/image.mk
