# shellcheck shell=bash
# NATS with JetStream, the event bus: find it, or start it without systemd, and check that
# JetStream is on. Sourced by lib/services.sh; expects WAIT_SECONDS and record_started from there.

NATS_PORT=4222
NATS_BIN=/usr/sbin/nats-server
NATS_STORE=/var/lib/nats-server
NATS_LOG=/var/log/nats-server.log
NATS_PIDFILE=/run/buytickets-nats.pid

nats_info() {
  tcp_first_line 127.0.0.1 "$NATS_PORT"
}

nats_up() {
  [[ $(nats_info) == INFO* ]]
}

ensure_nats() {
  local info
  info=$(nats_info || true)
  if [[ -z $info ]]; then
    if tcp_open 127.0.0.1 "$NATS_PORT"; then
      die "NATS: something listens on 127.0.0.1:$NATS_PORT but sends no INFO line" \
        "find it with: ss -ltnp 'sport = :$NATS_PORT'"
    fi
    say "NATS: not running; starting it with JetStream"
    as_root mkdir -p "$NATS_STORE" "$(dirname "$NATS_LOG")"
    as_root start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$NATS_PIDFILE" \
      --exec "$NATS_BIN" -- -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE" -l "$NATS_LOG" ||
      die "NATS: start-stop-daemon could not start $NATS_BIN" "read $NATS_LOG"
    wait_until "$WAIT_SECONDS" nats_up ||
      die "NATS: did not come up on 127.0.0.1:$NATS_PORT after ${WAIT_SECONDS}s" "read $NATS_LOG"
    record_started nats
    info=$(nats_info || true)
    say "NATS: started (log: $NATS_LOG)"
  fi
  if [[ $info != INFO* ]]; then
    die "NATS: 127.0.0.1:$NATS_PORT stopped answering" "read $NATS_LOG"
  elif [[ $info != *'"jetstream":true'* ]]; then
    die "NATS: the server on 127.0.0.1:$NATS_PORT runs without JetStream" \
      "stop it and run scripts/dev again, or restart it with: nats-server -js -sd $NATS_STORE"
  fi
  say "NATS: running with JetStream (127.0.0.1:$NATS_PORT)"
}
