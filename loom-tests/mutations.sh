#!/usr/bin/env bash
# Proves the loom scenarios have teeth: each mutation weakens one critical
# ordering in src/ring/ (compiled in with --cfg shmq_mutation="NAME",
# which build.rs sets for the shmq crate alone from SHMQ_MUTATION, so
# only shmq and the loom tests are rebuilt for each mutation),
# and the scenario named beside it must then fail. Exits non-zero if any
# mutation survives.
#
#   bash loom-tests/mutations.sh            # all mutations
#   bash loom-tests/mutations.sh data_fence # one
set -uo pipefail
cd "$(dirname "$0")/.."

# The list: loom-tests/mutations.txt (NAME | SCENARIO | what it weakens).
MUTATIONS=()
while IFS='|' read -r name scenario _; do
  name="${name//[[:space:]]/}"; scenario="${scenario//[[:space:]]/}"
  case "$name" in ''|'#'*) continue ;; esac
  MUTATIONS+=("$name $scenario")
done < loom-tests/mutations.txt

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
survivors=0
for entry in "${MUTATIONS[@]}"; do
  read -r name scenario <<<"$entry"
  if [ $# -gt 0 ] && [ "$1" != "$name" ]; then continue; fi
  log="target/mutation-$name.log"
  mkdir -p target
  if SHMQ_MUTATION="$name" CARGO_TARGET_DIR=target/mutants \
      timeout 900 cargo test -q -p shmq-loom-tests --release --test ring --test ownership --test closing -- --exact "$scenario" >"$log" 2>&1; then
    echo "SURVIVED  $name  ($scenario still passes)"
    survivors=$((survivors + 1))
  else
    why=$(grep -m1 -oE "a committed frame[^:]*|Causality violation[^.]*|[Dd]eadlock[^.]*|torn message|assertion[^,]*" "$log" | head -1)
    echo "caught    $name  by $scenario: ${why:-failed}"
  fi
done
if [ "$survivors" -gt 0 ]; then
  echo "$survivors mutation(s) survived"
  exit 1
fi
echo "every mutation was caught"
