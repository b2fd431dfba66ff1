# image/, systemd/ and ansible/ targets. Included by the top Makefile.
#   make test-deps-image   tools the fast tests need (apt, only what is missing; root)
#   make image-deps        tools the image build and boot test need (apt, binfmt; root)
#   make image             build image/out/sms-appliance.img.xz (+ .sha256)
#   make test-image        the slow end-to-end test (see image/test-image.sh); passed
#                          end to end here in 18 min (2 cores), hard limit 60 min

.PHONY: test-deps-image image-deps image test-image

# Debian package per command the fast tests run.
IMAGE_FAST_TOOLS := systemd-analyze:systemd sfdisk:fdisk mkfs.vfat:dosfstools mdir:mtools \
	mcopy:mtools mke2fs:e2fsprogs debugfs:e2fsprogs xz:xz-utils
IMAGE_SLOW_TOOLS := mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static \
	update-binfmts:binfmt-support arch-test:arch-test qemu-system-aarch64:qemu-system-arm \
	ssh:openssh-client ssh-keygen:openssh-client curl:curl zstd:zstd

# Install the packages whose commands are missing; a no-op (and no apt call) otherwise.
define apt_missing
	@missing=""; for pair in $(1); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || [ -x /sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  for i in 1 2 3; do \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends $$missing >/dev/null && break; \
	    echo "apt-get failed (attempt $$i), retrying" >&2; sleep $$((i * 10)); \
	  done; \
	fi; \
	still=""; for pair in $(1); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || [ -x /sbin/$$cmd ] || still="$$still $$cmd($$pkg)"; done; \
	if [ -n "$$still" ]; then \
	  echo "missing after apt-get install:$$still; install these Debian packages as root and retry" >&2; exit 1; \
	fi
endef

test-deps-image:
	$(call apt_missing,$(IMAGE_FAST_TOOLS))

image-deps: test-deps-image
	$(call apt_missing,$(IMAGE_SLOW_TOOLS))
	@[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	@[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
	@arch-test arm64

image: image-deps $(STAMP)
	PYTHON=$(abspath $(PY)) image/build-wheelhouse.sh image/out/wheelhouse
	image/build-rootfs.sh --wheelhouse image/out/wheelhouse image/out/rootfs
	image/mkimage.sh image/out/rootfs image/out/sms-appliance.img

# The whole pipeline, hard-limited well inside CI's 90 minutes.
test-image: image-deps $(STAMP)
	PYTHON=$(abspath $(PY)) timeout --kill-after=60 60m image/test-image.sh image/out
