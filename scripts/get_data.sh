#!/usr/bin/env bash
# Obtains the offline in-distribution data of the embedded suite, Fashion-MNIST IDX files, and says in
# one line where they came from. In order: $OODJAX_FASHION_MNIST; the Debian package's folder; the tfds
# export in the user cache; installing the Debian package (root or password-less sudo; skipped with
# OODJAX_NO_APT=1); else the tfds `fashion_mnist` dataset, downloaded and exported to the user cache.
set -euo pipefail
py=${OODJAX_PYTHON:-.venv/bin/python}
debian=/usr/share/datasets/fashion-mnist
cache=${XDG_CACHE_HOME:-$HOME/.cache}/oodjax/fashion-mnist  # = oodjax.data.fashion_mnist.cache_dir()
have() {
  local stem
  for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$1/$stem" ] || [ -f "$1/$stem.gz" ] || return 1
  done
}
if [ -n "${OODJAX_FASHION_MNIST:-}" ]; then
  if have "$OODJAX_FASHION_MNIST"; then echo "Fashion-MNIST: IDX files from \$OODJAX_FASHION_MNIST=$OODJAX_FASHION_MNIST"; exit 0; fi
  echo "error: OODJAX_FASHION_MNIST=$OODJAX_FASHION_MNIST holds no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...)." >&2
  exit 1
fi
if have "$debian"; then echo "Fashion-MNIST: Debian package dataset-fashion-mnist ($debian)"; exit 0; fi
if have "$cache"; then echo "Fashion-MNIST: tfds 'fashion_mnist', exported earlier to $cache"; exit 0; fi
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo=none; fi
if [ "${OODJAX_NO_APT:-0}" != 1 ] && [ "$sudo" != none ] && command -v apt-get >/dev/null; then
  if $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
     { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; then
    have "$debian" && { echo "Fashion-MNIST: Debian package dataset-fashion-mnist, installed now ($debian)"; exit 0; }
  fi
fi
if [ "${OODJAX_NO_APT:-0}" = 1 ]; then why="OODJAX_NO_APT=1"; elif [ "$sudo" = none ]; then why="apt needs root or password-less sudo"; else why="apt could not install it"; fi
echo "Fashion-MNIST: not from the Debian package ($why); downloading tfds 'fashion_mnist' instead"
if "$py" -m oodjax.data.fashion_mnist_tfds --out "$cache" && have "$cache"; then
  echo "Fashion-MNIST: tfds 'fashion_mnist', exported to $cache"
  exit 0
fi
cat >&2 <<MSG
error: Fashion-MNIST is not available and could not be fetched here.
  On Debian/Ubuntu:  sudo apt-get install dataset-fashion-mnist   (files land in $debian)
  With internet:     $py -m oodjax.data.fashion_mnist_tfds        (tfds, into $cache)
  Elsewhere: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
  t10k-labels-idx1-ubyte.gz in a folder and run:  OODJAX_FASHION_MNIST=/that/folder make demo
MSG
exit 1
