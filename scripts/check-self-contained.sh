#!/usr/bin/env bash
# Checks that the tests, benches and scripts read nothing outside the
# repository (issue #9: a fresh clone passes its tests on its own).
#
#   scripts/check-self-contained.sh                 # static check only
#   scripts/check-self-contained.sh --run [--hide DIR]... [-- CARGO TEST ARGS]
#
# 1. Static: no tracked file but the docs and the recorded bench runs names a
#    path that leads outside the clone: the shared material this project's
#    data was copied from (`/work/...`, `shared/data`, `../shared`), a home
#    directory, or a relative path climbing above the repository root.
# 2. With --run: clones HEAD into an empty temporary directory and runs
#    `cargo test --workspace --locked` (or the given cargo test arguments)
#    there, with each --hide DIR covered by an empty tmpfs in a private
#    mount namespace (needs root and `unshare`), so a test that still reads
#    such a folder fails instead of passing by accident. CARGO_TARGET_DIR is
#    honoured (a warm target dir saves rebuilding the dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

run=0
hide=()
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --run) run=1 ;;
    --hide) hide+=("$2"); shift ;;
    --) shift; cargo_args=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# --- 1. static ---------------------------------------------------------------
# Paths that cannot be inside a clone. `../../../` from a crate's src/ is the
# repository root, so only climbs that start above it are flagged: four or
# more levels, or three from a crate's tests/ or benches/ folder.
pattern='/work/|shared/data|\.\./shared|/home/[a-z]|\.\./\.\./\.\./\.\./'
found=$(git grep -n -I -E "$pattern" -- . ':!*.md' ':!bench/runs' ':!scripts/check-self-contained.sh' || true)
climbs=$(git grep -n -I -E '\.\./\.\./\.\./' -- 'crates/*/tests' 'crates/*/benches' || true)
if [ -n "$found$climbs" ]; then
  echo "paths outside the repository in tracked files:" >&2
  printf '%s\n' "$found" "$climbs" | sed '/^$/d' >&2
  exit 1
fi
echo "static check: no tracked file names a path outside the repository"

[ "$run" = 1 ] || exit 0

# --- 2. a fresh clone, the shared folders hidden -----------------------------
clone=$(mktemp -d /tmp/dnsrecall-clone.XXXXXX)
trap 'rm -rf "$clone"' EXIT
git clone --quiet --no-local . "$clone/repo"
git -C "$clone/repo" log -1 --format='fresh clone at %h: %s'
[ ${#cargo_args[@]} -gt 0 ] || cargo_args=(--workspace --locked)
mounts=""
for dir in "${hide[@]}"; do
  [ -d "$dir" ] || { echo "--hide $dir: not a directory" >&2; exit 2; }
  mounts+="mount -t tmpfs -o size=1m,mode=0555 none '$dir' && "
done
inner="${mounts}cd '$clone/repo' && cargo test ${cargo_args[*]}"
if [ ${#hide[@]} -gt 0 ]; then
  echo "running in a private mount namespace with ${hide[*]} hidden: cargo test ${cargo_args[*]}"
  unshare --mount --propagation private bash -c "$inner"
else
  bash -c "$inner"
fi
