#!/usr/bin/env bash
# The main job on a bundled photo: set up (first time), encode, decode, print size and quality.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
neural-memory demo "$@"
