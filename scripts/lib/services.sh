# shellcheck shell=bash
# The local services the suite and its tests need (PostgreSQL, Redis, NATS with JetStream):
# find them, install and start the missing ones without systemd, and stop what we started.
# One file per server (lib/postgres.sh, lib/redis.sh, lib/nats.sh), all sourced from here;
# this file keeps what they share: the record of what was started, and starting and stopping
# them together. Sourced by scripts/dev after lib/common.sh; works from the repository root.

# What scripts/dev started, one service per line, so that `scripts/dev down` stops only those.
STARTED_FILE=target/dev-started
PG_HBA_MARK='# buytickets scripts/dev: trust local connections'

# How long to wait for a service to come up.
WAIT_SECONDS=${DEV_WAIT_SECONDS:-60}

# ---- bookkeeping ---------------------------------------------------------------------------

record_started() {
  mkdir -p "$(dirname "$STARTED_FILE")"
  touch "$STARTED_FILE"
  grep -qxF "$*" "$STARTED_FILE" || printf '%s\n' "$*" >>"$STARTED_FILE"
}

forget_started() {
  [[ -f $STARTED_FILE ]] || return 0
  local rest
  rest=$(grep -vxF "$*" "$STARTED_FILE" || true)
  if [[ -n $rest ]]; then printf '%s\n' "$rest" >"$STARTED_FILE"; else rm -f "$STARTED_FILE"; fi
}

LIB_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/postgres.sh
source "$LIB_DIR/postgres.sh"
# shellcheck source=scripts/lib/redis.sh
source "$LIB_DIR/redis.sh"
# shellcheck source=scripts/lib/nats.sh
source "$LIB_DIR/nats.sh"

# ---- all together --------------------------------------------------------------------------

# ensure_prerequisites [services] [build]: installs what is missing, in one apt-get run, then
# starts the services that are not running.
ensure_prerequisites() {
  local want_services=0 want_build=0 what
  for what in "$@"; do
    case $what in
      services) want_services=1 ;;
      build) want_build=1 ;;
    esac
  done
  local pkgs=()
  if ((want_services)); then
    if ! pg_up && ! pg_server_installed; then
      pkgs+=(postgresql)
    elif ! have psql || ! have pg_isready; then
      pkgs+=(postgresql-client)
    fi
    redis_up || have redis-server || pkgs+=(redis-server)
    nats_up || [[ -x $NATS_BIN ]] || pkgs+=(nats-server)
  fi
  if ((want_build)); then
    have cc || pkgs+=(build-essential)
    have pkg-config || pkgs+=(pkg-config)
  fi
  install_packages "${pkgs[@]}"
  if ((want_services)); then
    ensure_postgres
    ensure_redis
    ensure_nats
  fi
}

# proc_running PID: true while PID exists and is not a zombie waiting to be reaped.
proc_running() {
  [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

proc_gone() { ! proc_running "$1"; }

# stop_pidfile LABEL PIDFILE PROGRAM: stops the PROGRAM process named in PIDFILE, if it runs.
stop_pidfile() {
  local label=$1 pidfile=$2 program=$3 pid=
  if as_root test -r "$pidfile"; then pid=$(as_root cat "$pidfile"); fi
  if [[ $pid =~ ^[0-9]+$ ]] && proc_running "$pid" &&
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$program" ]]; then
    as_root kill -TERM "$pid"
    if wait_until 20 proc_gone "$pid"; then
      say "$label: stopped"
    else
      warn "$label: process $pid did not stop within 20s"
      return 1
    fi
  else
    say "$label: was not running"
  fi
  as_root rm -f "$pidfile"
}

# services_down: stops the services recorded in STARTED_FILE, and nothing else.
services_down() {
  if [[ ! -s $STARTED_FILE ]]; then
    say "nothing to stop: scripts/dev has not started any service ($STARTED_FILE is empty)"
    return 0
  fi
  local lines line kind a b failed=0
  mapfile -t lines <"$STARTED_FILE"
  for line in "${lines[@]}"; do
    read -r kind a b <<<"$line"
    case $kind in
      postgresql)
        if [[ $(pg_lsclusters -h 2>/dev/null | awk -v v="$a" -v n="$b" '$1 == v && $2 == n { print $4 }') == down ]]; then
          say "PostgreSQL: cluster $a/$b was not running"
        elif as_root pg_ctlcluster --skip-systemctl-redirect "$a" "$b" stop; then
          say "PostgreSQL: stopped cluster $a/$b"
        else
          failed=1
          continue
        fi
        ;;
      redis) stop_pidfile Redis "$REDIS_PIDFILE" redis-server || { failed=1 && continue; } ;;
      nats) stop_pidfile NATS "$NATS_PIDFILE" nats-server || { failed=1 && continue; } ;;
      *) warn "unknown entry in $STARTED_FILE: $line" ;;
    esac
    forget_started "$line"
  done
  ((failed == 0)) || die "some services did not stop; $STARTED_FILE lists them"
}
