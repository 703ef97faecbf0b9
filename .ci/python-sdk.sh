#!/usr/bin/env bash
# End-to-end interop check of the exai binary against the official Python MCP SDK (mcp==2.3.0).
#
#   .ci/python-sdk.sh [EXAI_BINARY]      default: ${CARGO_TARGET_DIR:-target}/debug/exai
#
# Keeps a venv at ${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}/py-venv (recreated when its mcp is not the pinned
# version), installs tests/python/requirements.txt into it, then runs tests/python/test_sdk.py, which ends
# with "python-sdk: N passed, N failed" and exits non-zero on any failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# An explicit path is taken relative to the caller's directory; the default relative to the repo root.
if [[ $# -ge 1 && "$1" != /* ]]; then
    binary="$PWD/$1"
else
    binary="${1:-${CARGO_TARGET_DIR:-target}/debug/exai}"
fi
cd "$repo_root"

mcp_version="2.3.0"
requirements="tests/python/requirements.txt"
tools_dir="${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}"
venv="$tools_dir/py-venv"
python="${PYTHON:-python3}"

if [[ ! -x "$binary" ]]; then
    echo "python-sdk: exai binary not found or not executable: $binary (build it with 'cargo build' first)" >&2
    exit 2
fi

installed_mcp() {
    [[ -x "$venv/bin/python" ]] || return 0
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true
}

if [[ "$(installed_mcp)" != "$mcp_version" ]]; then
    if [[ -d "$venv" ]]; then
        echo "python-sdk: recreating $venv (mcp there is '$(installed_mcp)', want $mcp_version)"
        rm -rf "$venv"
    fi
    mkdir -p "$tools_dir"
    "$python" -m venv "$venv"
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"

got="$(installed_mcp)"
if [[ "$got" != "$mcp_version" ]]; then
    echo "python-sdk: venv has mcp '$got' after install, expected $mcp_version" >&2
    exit 1
fi

exec "$venv/bin/python" tests/python/test_sdk.py "$binary"
