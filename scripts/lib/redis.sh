# shellcheck shell=bash
# Redis for the expiration queue and the ban cache: find it, or start it without systemd.
# Sourced by lib/services.sh; expects WAIT_SECONDS and record_started from there.

REDIS_PORT=6379
REDIS_DIR=/var/lib/redis
REDIS_LOG=/var/log/redis/ci.log
REDIS_PIDFILE=/run/buytickets-redis.pid

redis_up() {
  [[ $(tcp_first_line 127.0.0.1 "$REDIS_PORT" PING) == +PONG ]]
}

ipv6_loopback() {
  [[ -r /proc/net/if_inet6 ]] &&
    awk '$1 == "00000000000000000000000000000001" { found = 1 } END { exit !found }' /proc/net/if_inet6
}

redis_launch() {
  as_root redis-server --daemonize yes --bind "$@" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$REDIS_DIR" --logfile "$REDIS_LOG" --pidfile "$REDIS_PIDFILE" >/dev/null
}

ensure_redis() {
  if redis_up; then
    say "Redis: running (127.0.0.1:$REDIS_PORT)"
    return 0
  fi
  if tcp_open 127.0.0.1 "$REDIS_PORT"; then
    die "Redis: something listens on 127.0.0.1:$REDIS_PORT but does not answer PING with PONG" \
      "is it Redis with a password or in protected mode? 'redis-cli -p $REDIS_PORT ping' tells"
  fi
  say "Redis: not running; starting it"
  as_root mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOG")"
  local started=0
  # -::1 makes the IPv6 loopback optional, but some kernels without IPv6 still refuse it. Redis is
  # up in well under a second; if the first try is merely slow, the second one finds the port
  # taken and exits while the first goes on.
  if ipv6_loopback && redis_launch 127.0.0.1 -::1 && wait_until 3 redis_up; then
    started=1
  elif redis_launch 127.0.0.1 && wait_until "$WAIT_SECONDS" redis_up; then
    started=1
  fi
  ((started)) || die "Redis: did not come up on 127.0.0.1:$REDIS_PORT" "read $REDIS_LOG"
  record_started redis
  say "Redis: started (log: $REDIS_LOG)"
}
