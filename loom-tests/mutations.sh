#!/usr/bin/env bash
# Proves the loom scenarios have teeth: each mutation weakens one critical
# ordering in src/ring.rs (compiled in with --cfg shmq_mutation="NAME",
# which build.rs sets for the shmq crate alone from SHMQ_MUTATION, so
# only shmq and the loom tests are rebuilt for each mutation),
# and the scenario named beside it must then fail. Exits non-zero if any
# mutation survives.
#
#   bash loom-tests/mutations.sh            # all mutations
#   bash loom-tests/mutations.sh data_fence # one
set -uo pipefail
cd "$(dirname "$0")/.."

# mutation                 scenario that must catch it
MUTATIONS=(
  "commit_relaxed          mpsc_claims_are_disjoint_and_ordered"
  "cursor_relaxed          producer_sleep_never_misses_a_release"
  "epoch_relaxed           join_and_leave_while_publishing"
  "data_fence              subscriber_sleep_never_misses_a_wake"
  "space_fence             producer_sleep_never_misses_a_release"
  "join_fence              join_and_leave_while_publishing"
  "mark_store              stuck_claim_abort_races_commit"
  "abort_len_first         stuck_claim_abort_races_commit"
  "commit_store            stuck_claim_abort_races_commit"
  "group_no_wake           group_members_take_each_message_once"
  "fast_gate               fast_claims_respect_the_gating_cursor"
)

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
survivors=0
for entry in "${MUTATIONS[@]}"; do
  read -r name scenario <<<"$entry"
  if [ $# -gt 0 ] && [ "$1" != "$name" ]; then continue; fi
  log="target/mutation-$name.log"
  mkdir -p target
  if SHMQ_MUTATION="$name" CARGO_TARGET_DIR=target/mutants \
      timeout 900 cargo test -q -p shmq-loom-tests --release --test ring -- --exact "$scenario" >"$log" 2>&1; then
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
