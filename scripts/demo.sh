#!/usr/bin/env bash
# The main job: start tend, have it build the demo image and bring the demo
# stack up, break it three ways and watch tend heal it, then follow the journal.
# `make demo` first compiles the demo binary into the image's build context.
#   scripts/demo.sh        run the demo (make demo)
#   scripts/demo.sh down   take the stack down and stop the daemon (make demo-down)
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$PWD/.demo
TEND=$PWD/bin/tend
export TEND_SOCKET=$STATE/tend.sock
PROJECT=demo
mkdir -p "$STATE"

daemon_up() { "$TEND" ps >/dev/null 2>&1; }

if [ "${1:-}" = down ]; then
  if daemon_up; then
    "$TEND" down -p "$PROJECT" --volumes || true
    [ -f "$STATE/tend.pid" ] && kill "$(cat "$STATE/tend.pid")" 2>/dev/null || true
  fi
  pkill -f "serve --data $STATE/data" 2>/dev/null || true # a daemon whose socket is gone
  rm -rf "$STATE"
  echo "demo removed"
  exit 0
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -x examples/demo/demo ] || { echo "examples/demo/demo is missing: run make demo (it compiles it)" >&2; exit 1; }

if ! daemon_up; then
  say "starting the tend daemon (log: .demo/tend.log)"
  nohup "$TEND" serve --data "$STATE/data" --socket "$TEND_SOCKET" >"$STATE/tend.log" 2>&1 &
  echo $! >"$STATE/tend.pid"
  for _ in $(seq 50); do daemon_up && break; sleep 0.1; done
  daemon_up || { cat "$STATE/tend.log"; exit 1; }
fi

# back needs a file at start (the demo's DEMO_REQUIRE), so that break 6 can break it for good
# without a new release: a release that cannot start is rolled back, a dependency that vanishes
# is what quarantine is for.
mkdir -p "$STATE/back-state" && touch "$STATE/back-state/ok"
cat >"$STATE/back-needs.yaml" <<EOY
services:
  back:
    environment: {DEMO_REQUIRE: /state/ok}
    volumes: ["$STATE/back-state:/state:ro"]
EOY
FILES=(-f examples/stack/compose.yaml -f "$STATE/back-needs.yaml")
say "tend up -f examples/stack/compose.yaml -f .demo/back-needs.yaml -p $PROJECT --build --wait (builds tend-demo:dev FROM scratch; no registry needed)"
"$TEND" up "${FILES[@]}" -p "$PROJECT" --build --wait
"$TEND" ps -p "$PROJECT"

# started NAME: whether the replica runs, and how many journal entries its slot has. A restart
# in place (tend's shim restarts the process inside its container) leaves the container's start
# time as it was; the journal entry about it is what changes.
started() {
  local svc=${1#"$PROJECT"-}
  local running entries
  running=$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null || echo gone)
  entries=$("$TEND" events -p "$PROJECT" --json -n 0 | grep -c "\"service\":\"${svc%-*}\",\"slot\":${svc##*-}," || true)
  echo "$running $entries"
}

# heal NAME: wait until the replica runs again after a new journal entry, and say how long it took.
heal() {
  local name=$1 before=$2 t0=$3
  for _ in $(seq 300); do
    now=$(started "$name")
    if [ "${now%% *}" = true ] && [ "$now" != "$before" ]; then
      echo "   healed: $name is running again after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
      "$TEND" events -p "$PROJECT" -n 1
      return
    fi
    sleep 0.05
  done
  echo "   $name did not come back within 15 s; see: $TEND events -p $PROJECT" >&2
  return 1
}

say "break 1: the api process crashes (POST /crash on the published port 127.0.0.1:8080)"
before=$(started $PROJECT-api-1); t0=$(date +%s%N)
curl -s -X POST 127.0.0.1:8080/crash; echo
heal $PROJECT-api-1 "$before" "$t0"

say "break 2: docker kill $PROJECT-web-1 (behind tend's back)"
before=$(started $PROJECT-web-1); t0=$(date +%s%N)
docker kill $PROJECT-web-1 >/dev/null
heal $PROJECT-web-1 "$before" "$t0"

say "break 3: docker rm -f $PROJECT-web-2 (the container is gone)"
t0=$(date +%s%N)
docker rm -f $PROJECT-web-2 >/dev/null
heal $PROJECT-web-2 "gone" "$t0"

# takeovers SVC SLOT: how many start-first replacements of the slot the journal holds.
takeovers() {
  "$TEND" events -p "$PROJECT" --json -n 0 | grep "\"service\":\"$1\",\"slot\":$2," | grep -c '"action":"takeover"' || true
}

# replaced SVC SLOT BEFORE T0: wait for a new takeover of the slot, then show the journal's story.
replaced() {
  local svc=$1 slot=$2 before=$3 t0=$4
  for _ in $(seq 400); do
    if [ "$(takeovers "$svc" "$slot")" != "$before" ]; then
      echo "   replaced: $PROJECT-$svc-$slot is a new, ready replica after $(( ($(date +%s%N) - t0) / 1000000 )) ms; the sick one is gone"
      "$TEND" events -p "$PROJECT" -n 0 | grep "$PROJECT/$svc/$slot " | tail -3
      return
    fi
    sleep 0.05
  done
  echo "   $PROJECT-$svc-$slot was not replaced within 20 s; see: $TEND events -p $PROJECT" >&2
  return 1
}

ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | cut -d' ' -f1; }

say "break 4: $PROJECT-web-3 falls sick (POST /sick: /health answers 503; its compose healthcheck fails)"
before=$(takeovers web 3); t0=$(date +%s%N)
curl -s -X POST "$(ip $PROJECT-web-3):8080/sick"; echo
replaced web 3 "$before" "$t0"

say "break 5: the worker logs a fatal line (x-tend log rule: pattern FATAL)"
before=$(takeovers worker 1); t0=$(date +%s%N)
curl -s -X POST "$(ip $PROJECT-worker-1):8080/log?line=FATAL+lost+the+queue"; echo
replaced worker 1 "$before" "$t0"

say "load 6: 32 clients on shop (4 requests at once per replica) and on report (200 ms whatever the load)"
examples/demo/demo -load http://127.0.0.1:8081/ -clients 32 -for 20s | sed -n '1p;5p;10p;15p;20p;$p' &
shop=$!
examples/demo/demo -load http://127.0.0.1:8082/ -clients 32 -for 20s >/dev/null &
report=$!
wait "$shop" "$report" # not a bare wait: the daemon started above is a child of this script too
"$TEND" events -p "$PROJECT" -n 0 | grep ' scale ' || true
echo "   shop scaled out for latency; report was tried, went back to 1 (no-effect); both return to 1 about 15 s after the load"
# Isolation: back loses a file it needs at start and crashes: every restart fails. tend
# quarantines it, front degrades gracefully, the rest keeps its latency; once the file is back,
# a half-open trial restores it on its own.
journal_has() { "$TEND" events -p "$PROJECT" --json -n 0 | grep "\"service\":\"$1\"" | grep -c "\"action\":\"$2\"" || true; }
say "break 6: back is broken for good (the file it needs at start is removed, then it crashes)"
curl -s 127.0.0.1:8083/call
before=$(journal_has back quarantine); t0=$(date +%s%N)
rm "$STATE/back-state/ok"
curl -s -X POST "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$PROJECT-back-1"):8080/crash" >/dev/null
for _ in $(seq 1200); do [ "$(journal_has back quarantine)" != "$before" ] && break; sleep 0.05; done
echo "   quarantined after $(( ($(date +%s%N) - t0) / 1000000 )) ms; no more restarts:"
"$TEND" events -p "$PROJECT" -n 0 | grep -E "$PROJECT/back(/| )" | tail -3
echo "   back's port answers its fallback at once, front degrades gracefully, api is untouched:"
curl -s -o /dev/null -w '   back  127.0.0.1:8084  %{http_code} in %{time_total}s\n' 127.0.0.1:8084/
curl -s -w '   front 127.0.0.1:8083/call in %{time_total}s\n' 127.0.0.1:8083/call
curl -s -o /dev/null -w '   api   127.0.0.1:8080  %{http_code} in %{time_total}s\n' 127.0.0.1:8080/
"$TEND" ps -p "$PROJECT" | grep -E "SERVICE|back"
say "fix: the file is back; tend's next half-open trial restores back on its own (retry 10s, probation 5s)"
touch "$STATE/back-state/ok"; t0=$(date +%s%N)
before=$(journal_has back restore)
for _ in $(seq 1200); do [ "$(journal_has back restore)" != "$before" ] && break; sleep 0.05; done
echo "   restored $(( ($(date +%s%N) - t0) / 1000000 )) ms after the fix:"
"$TEND" events -p "$PROJECT" -n 0 | grep -E "$PROJECT/back(/| )" | grep -E "trial|restore" | tail -2
curl -s 127.0.0.1:8083/call

say "the stack is whole again"
"$TEND" ps -p "$PROJECT"

cat <<EOT

Now break it yourself (in another terminal, with TEND_SOCKET=$TEND_SOCKET):
  curl -X POST 127.0.0.1:8080/crash           # the api process exits 1: restarted at once
  docker kill $PROJECT-db-1                      # killed: restarted, exit code 137 in the journal
  docker rm -f $PROJECT-worker-1                 # removed: recreated
  curl -X POST \$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $PROJECT-db-1):8080/sick
                                               # db falls sick: replaced start-first, then api
                                               # (depends_on db with restart: true) is restarted
  for i in 1 2 3 4; do curl -X POST 127.0.0.1:8080/crash; sleep 1; done
                                               # a crash loop: watch the backoff grow
  curl -X POST \$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $PROJECT-back-1):8080/fail
  curl 127.0.0.1:8083/call                      # back answers 500s: its breaker opens, front degrades
  kill -9 \$(cat .demo/tend.pid); $TEND serve --data .demo/data --socket $TEND_SOCKET &
                                               # tend itself dies and comes back: it adopts the stack
Watch:
  examples/demo/demo -load http://127.0.0.1:8081/ -clients 32 -for 30s
                           # load on shop: watch tend ps scale it out, and in after the load
  $TEND scale shop=3       # pin shop at 3 replicas; $TEND scale shop --auto hands it back
  $TEND ps                 # replicas, health, restarts, counts against targets
  $TEND events --follow    # every action with its cause
Remove everything: make demo-down
EOT

if [ -t 0 ] && [ -t 1 ]; then
  say "following the journal (Ctrl-C stops watching; the stack keeps running)"
  exec "$TEND" events -p "$PROJECT" --follow -n 0
fi
