#!/usr/bin/env bash
# Obtains the offline in-distribution data of the embedded suite: Fashion-MNIST IDX files.
set -euo pipefail
dir=${OODJAX_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
have() { ls "$dir"/train-images-idx3-ubyte* >/dev/null 2>&1 && ls "$dir"/t10k-labels-idx1-ubyte* >/dev/null 2>&1; }
if have; then echo "Fashion-MNIST: found in $dir"; exit 0; fi
if [ -n "${OODJAX_FASHION_MNIST:-}" ]; then
  echo "error: OODJAX_FASHION_MNIST=$dir holds no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...)." >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo=none; fi
if [ "$sudo" != none ] && command -v apt-get >/dev/null; then
  echo "Fashion-MNIST: installing the Debian package dataset-fashion-mnist"
  $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
  have && { echo "Fashion-MNIST: installed in $dir"; exit 0; }
fi
cat >&2 <<MSG
error: Fashion-MNIST is not available and could not be installed here.
  On Debian/Ubuntu:  sudo apt-get install dataset-fashion-mnist   (files land in /usr/share/datasets/fashion-mnist)
  Elsewhere: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
  t10k-labels-idx1-ubyte.gz in a folder and run:  OODJAX_FASHION_MNIST=/that/folder make demo
MSG
exit 1
