#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The care-team story, played on loopback by three real daemons: a therapist, a
# psychiatrist and a pharmacist. Run through ./run demo.
set -euo pipefail
BIN=${LIAISON_BIN:?set LIAISON_BIN to the build directory}
PATH="$BIN/client:$BIN/daemon:$PATH"
DEMO=$(mktemp -d /tmp/liaison-demo.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DEMO"
}
trap cleanup EXIT

b=$'\033[1m'; d=$'\033[2m'; g=$'\033[32m'; r=$'\033[0m'
step() { printf '\n%s== %s%s\n' "$b" "$*" "$r"; }
say() { printf '%s\n' "$*"; }
run() { printf '%s$ %s%s\n' "$d" "$*" "$r"; "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

node() { # id name role org
    local home="$DEMO/$1" port
    port=$(free_port)
    liaison init --home "$home" --id "$1" --name "$2" --role "$3" --org "$4" \
        --listen "tcp://127.0.0.1:$port" >/dev/null
    # A signed checkpoint every 16 audit entries (default 256), so that the short story's
    # entries are covered by one before it ends (the auditor's step proves one of them).
    sed -i 's/^checkpoint_entries = .*/checkpoint_entries = 16/' "$home/liaison.conf"
    liaisond --home "$home" 2>"$DEMO/$1.log" &
    PIDS+=($!)
    for _ in $(seq 100); do liaison --home "$home" status >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "liaisond for $1 did not start:"; cat "$DEMO/$1.log"; exit 1
}
L() { local who=$1; shift; liaison --home "$DEMO/$who" "$@"; }

step "Three providers set up their nodes"
node dr.alvarez "Dr. Ana Alvarez" therapist "Eastside Counseling"
node dr.okafor "Dr. Chidi Okafor" psychiatrist "Riverside Psychiatry"
node rx.chen "Lin Chen, PharmD" pharmacist "Main St Pharmacy"
say "Each node has an Ed25519 identity, an X25519 encryption key and a CurveZMQ transport key."

step "They exchange contact cards and check fingerprints by phone"
for a in dr.alvarez dr.okafor rx.chen; do L "$a" card > "$DEMO/$a.card"; done
for a in dr.alvarez dr.okafor rx.chen; do
    for p in dr.alvarez dr.okafor rx.chen; do
        [ "$a" = "$p" ] || L "$a" peer add "$DEMO/$p.card" >/dev/null
    done
done
say "Dr. Okafor reads his fingerprint aloud: $(L dr.okafor fingerprint)"
say "Dr. Alvarez sees for dr.okafor:        $(L dr.alvarez fingerprint dr.okafor)"
sleep 1

# Session dates are real days: a note may not report a session after today.
LAST_WEEK=$(date -d "7 days ago" +%F)
TODAY=$(date +%F)
step "Monday: the therapist reports progress after the weekly session"
NOTE=$(printf 'Engaged well in CBT; behavioural activation going better. Sleep improved to ~6.5 h.\nReports mild nausea since the sertraline increase.' |
    L dr.alvarez note --to dr.okafor --patient P-1042 --phq9 14 --gad7 11 --risk low \
      --modality cbt --session-date "$LAST_WEEK" -)
say "progress note $NOTE sent to dr.okafor"
NOTE2=$(printf 'Mood brighter, PHQ-9 down. Nausea settling.' |
    L dr.alvarez note --to dr.okafor --patient P-1042 --phq9 9 --gad7 8 --risk none \
      --modality cbt --session-date "$TODAY" -)
say "progress note $NOTE2 sent to dr.okafor"
say "A typo in the letter case would split the patient's record; liaison refuses it:"
if printf 'x' | L dr.alvarez note --to dr.okafor --patient p-1042 --session-date "$TODAY" - 2>"$DEMO/typo.err"; then
    echo "the new spelling p-1042 was not refused"; exit 1
fi
say "  $(cat "$DEMO/typo.err")"
sleep 1
run L dr.okafor inbox --patient P-1042
run L dr.okafor show "$NOTE2"

step "The psychiatrist changes the dose (urgent) and asks both others to acknowledge"
MED=$(L dr.okafor med-change --to dr.alvarez,rx.chen --patient P-1042 --drug sertraline \
      --action increase --from "50 mg daily" --dose "100 mg daily" \
      --reason "partial response at 8 weeks, tolerating well" \
      --monitor "activation, GI side effects, suicidality in the first 2 weeks" --urgent)
say "medication change $MED sent; the psychiatrist's script waits for both receipts:"
run L dr.okafor wait "$MED" --timeout 30
run L dr.alvarez inbox --needs-ack
run L dr.alvarez show "$MED"

step "The therapist acknowledges; the loop closes on the psychiatrist's side"
run L dr.alvarez ack "$MED" --comment "Seen. Will screen for activation at Monday's session."
say "Waiting up to 2 s for every acknowledgement: the pharmacist's is still missing (exit 5)."
rc=0; run L dr.okafor wait "$MED" --ack --timeout 2 || rc=$?
[ "$rc" = 5 ] || { echo "expected wait --ack to run out (exit 5), got $rc"; exit 1; }
run L dr.okafor outbox
run L dr.okafor status

step "A case review with the pharmacist ends in a decision"
REVIEW=$(L dr.okafor review open --with dr.alvarez,rx.chen --patient P-1042 \
         --question "Nausea on sertraline 100 mg: switch, split dose, or add ondansetron?")
say "review $REVIEW opened"
sleep 1
printf 'Ondansetron adds QT risk with his citalopram history; suggest taking sertraline with food and splitting the dose first.' |
    L rx.chen review reply "$REVIEW" - >/dev/null
printf 'Agree; nausea is already improving per session.' | L dr.alvarez review reply "$REVIEW" - >/dev/null
sleep 1
L dr.okafor review close "$REVIEW" --decision "Continue 100 mg, taken with food; reassess in 2 weeks." \
    --action "dr.alvarez: screen GI symptoms and activation by 2026-12-07" \
    --action "rx.chen: counsel on dose timing at next fill by 2026-11-30" >/dev/null
sleep 1
run L dr.alvarez review show "$REVIEW"

step "The patient's timeline on the psychiatrist's node"
run L dr.okafor patient P-1042

step "Every node's audit log verifies, and the auditor sees who told whom what"
for a in dr.alvarez dr.okafor rx.chen; do
    printf '%s: ' "$a"; L "$a" audit verify | head -1
done
run L dr.okafor audit disclosures --patient P-1042

step "An outside auditor checks one disclosure with a proof file and Dr. Okafor's card alone"
CP=$(L dr.okafor audit checkpoint --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
SEQ=$(L dr.okafor audit log --patient P-1042 --action message-delivered --json |
    python3 -c 'import json,sys; print([e["seq"] for e in json.load(sys.stdin)["entries"] if e["seq"] <= int(sys.argv[1])][-1])' "$CP")
L dr.okafor audit prove "$SEQ" > "$DEMO/proof.json"
say "Dr. Okafor's node hands over proof.json: entry $SEQ and the path to a checkpoint it signed."
run liaison audit verify-proof "$DEMO/proof.json" --card "$DEMO/dr.okafor.card"

printf '\n%sThe story is complete: notes, an acknowledged urgent medication change, a closed case review, verified audit logs, a disclosure proved to an outsider.%s\n' "$g" "$r"
