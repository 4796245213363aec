#!/usr/bin/env bash
# Set up (first time), lint, and run the test suite (slow checks excluded; add -m slow for them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$root"
ruff check src tests scripts
ruff format --check src tests scripts
python -m pytest -q "$@"
