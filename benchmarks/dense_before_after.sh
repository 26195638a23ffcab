#!/usr/bin/env bash
# Dense classify before/after a change, alternated in one session on the same scenes and bundle:
#   bash benchmarks/dense_before_after.sh BEFORE_COMMIT BUNDLE [WORKDIR]
# BEFORE_COMMIT is checked out in a git worktree; each size (1024², 2048²) runs before, after, before,
# after with `python -m benchmarks large-scene` (the before commit's own version of it).
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 bundle=$(realpath "$2") work=${3:-/tmp/geohsi-dense-ab}
mkdir -p "$work"
tree="$work/before-$before"
[ -d "$tree" ] || git worktree add --detach "$tree" "$before" >/dev/null
for size in 1024 2048; do
  for rep in 1 2; do
    echo "== before ($before) ${size}² run $rep"
    (cd "$tree" && PYTHONPATH="$tree" "$OLDPWD/.venv/bin/python" -m benchmarks large-scene "$bundle" --size "$size" --workdir "$work" | grep -A1 "synthetic scene")
    echo "== after ($(git rev-parse --short HEAD)) ${size}² run $rep"
    .venv/bin/python -m benchmarks large-scene "$bundle" --size "$size" --workdir "$work" | grep -A1 "synthetic scene"
  done
done
