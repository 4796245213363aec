#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a virtual environment in .venv with
# the package (editable, with its C extensions built in place) and all its extras. Re-running
# is cheap: pip runs again only when pyproject.toml, setup.py or the C sources changed. Set
# NM_PYTHON to choose the interpreter (default: python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${NM_PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setting up $venv (first run: downloads PyTorch CPU and friends, a few minutes)" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.neural-memory-installed"
# re-install when the dependencies or the native sources change: an editable install does not
# rebuild the C extensions (setup.py) on its own
want="$(cd "$root" && { cat pyproject.toml setup.py 2>/dev/null; find native src -name '*.[ch]' \
  -not -path '*/fuzz/*' -not -path '*/wasm/*' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)"
# PyTorch first, the CPU build of the version the figures were measured with: the extras ask
# only for a range, which a plain pip would fill with a CUDA build of several GB.
torch_version="2.13.0"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  if ! "$venv/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet "torch==$torch_version" \
      --index-url https://download.pytorch.org/whl/cpu
  fi
  "$venv/bin/python" -m pip install --quiet -e "$root[all]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$root/.numba_cache}"
