#!/bin/bash
# Build the wheelhouse that every install uses: the sms_appliance wheel of this checkout
# and all its dependencies (pure Python), plus lgpio for aarch64/CPython 3.11 (bookworm).
#
#   image/build-wheelhouse.sh OUTDIR
#
# Downloads from PyPI with retries; the boards themselves never need network for it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$1
rm -rf "$OUT"
mkdir -p "$OUT"
pip=("$PYTHON" -m pip --disable-pip-version-check --retries 5 --timeout 60)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# Build from a copy so no build/ or egg-info lands in the checkout others work in.
tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=image/out -cf - . | tar -C "$build" -xf -
"${pip[@]}" wheel --quiet --wheel-dir "$OUT" "$build"
"${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$OUT" \
	--platform manylinux_2_34_aarch64 --platform manylinux_2_17_aarch64 \
	--python-version 3.11 --implementation cp --abi cp311 'lgpio>=0.2'
# Compiled dependencies (greenlet, httptools) were built for this machine: fetch the board's
# arm64 wheels of the same versions instead (CPython 3.11, Debian bookworm's).
for whl in "$OUT"/*.whl; do
	case $whl in
	*-none-any.whl | *aarch64.whl) continue ;;
	esac
	base=$(basename "$whl")
	rm -f "$whl"
	"${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$OUT" \
		--platform manylinux_2_34_aarch64 --platform manylinux_2_17_aarch64 \
		--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp --abi cp311 \
		"$(echo "$base" | cut -d- -f1)==$(echo "$base" | cut -d- -f2)"
done
for whl in "$OUT"/*.whl; do
	case $whl in
	*-none-any.whl | *aarch64.whl) ;;
	*) echo "build-wheelhouse: $whl is not pure Python; it would not install on arm64" >&2; exit 1 ;;
	esac
done
ls "$OUT"
