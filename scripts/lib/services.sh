# shellcheck shell=bash
# The local services the suite and its tests need (PostgreSQL, Redis, NATS with JetStream):
# find them, install and start the missing ones without systemd, and stop what we started.
# Sourced by scripts/dev after lib/common.sh; works from the repository root.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
REDIS_PORT=6379
NATS_PORT=4222

REDIS_DIR=/var/lib/redis
REDIS_LOG=/var/log/redis/ci.log
REDIS_PIDFILE=/run/buytickets-redis.pid
NATS_BIN=/usr/sbin/nats-server
NATS_STORE=/var/lib/nats-server
NATS_LOG=/var/log/nats-server.log
NATS_PIDFILE=/run/buytickets-nats.pid

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

# ---- PostgreSQL ----------------------------------------------------------------------------

pg_psql() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -w -X -q -v ON_ERROR_STOP=1 "$@"
}

pg_up() {
  if have pg_isready; then
    pg_isready -h "$PG_HOST" -p "$PG_PORT" -t 2 -q
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

pg_server_installed() {
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && have pg_ctlcluster
}

# pg_cluster: prints "VERSION NAME LOGFILE" of the Debian cluster set up for PG_PORT.
pg_cluster() {
  have pg_lsclusters || return 1
  pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $7; exit }'
}

pg_start() {
  local ver name log
  read -r ver name log < <(pg_cluster) || true
  if [[ -z ${ver:-} ]]; then
    if [[ -n $(pg_lsclusters -h 2>/dev/null) ]]; then
      die "PostgreSQL: no cluster is set up for port $PG_PORT" \
        "pg_lsclusters shows the ones there are; set one to port $PG_PORT in its postgresql.conf"
    fi
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    name=main
    say "PostgreSQL: creating cluster $ver/$name on port $PG_PORT"
    as_root pg_createcluster --port "$PG_PORT" "$ver" "$name" >/dev/null ||
      die "PostgreSQL: pg_createcluster $ver $name failed (see the output above)"
    read -r ver name log < <(pg_cluster) || true
  fi
  log=${log:-/var/log/postgresql/postgresql-$ver-$name.log}
  say "PostgreSQL: not running; starting cluster $ver/$name"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
    die "PostgreSQL: pg_ctlcluster $ver $name start failed" "read $log"
  record_started postgresql "$ver" "$name"
  wait_until "$WAIT_SECONDS" pg_up ||
    die "PostgreSQL: not accepting connections on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s" \
      "read $log; check listen_addresses and port in /etc/postgresql/$ver/$name/postgresql.conf"
  say "PostgreSQL: started (log: $log)"
}

# The suite and the tests connect as postgres over TCP with no password; Debian's default
# pg_hba.conf asks for one, so put trust lines for this machine's own connections first.
pg_ensure_trust() {
  local err ver name log hba
  err=$(pg_psql -c 'SELECT 1' 2>&1 >/dev/null) && return 0
  read -r ver name log < <(pg_cluster) || true
  hba=/etc/postgresql/${ver:-?}/${name:-?}/pg_hba.conf
  if [[ -z ${ver:-} ]] || ! as_root test -f "$hba" || as_root grep -qF "$PG_HBA_MARK" "$hba"; then
    die "PostgreSQL: cannot connect as $PG_USER@$PG_HOST:$PG_PORT without a password: $err" \
      "the suite and its tests need 'trust' for 127.0.0.1 (and local) in pg_hba.conf"
  fi
  say "PostgreSQL: allowing local connections without a password (trust) in $hba"
  say "PostgreSQL: the previous file is kept as $hba.buytickets-orig"
  as_root cp -p "$hba" "$hba.buytickets-orig"
  as_root sed -i \
    -e "1i $PG_HBA_MARK" \
    -e '1i local   all   all                  trust' \
    -e '1i host    all   all   127.0.0.1/32   trust' \
    -e '1i host    all   all   ::1/128        trust' \
    "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload ||
    die "PostgreSQL: reload of $ver/$name failed" "read ${log:-/var/log/postgresql/}"
  wait_until 10 pg_psql -c 'SELECT 1' >/dev/null 2>&1 ||
    die "PostgreSQL: still cannot connect as $PG_USER@$PG_HOST:$PG_PORT after allowing trust" \
      "check $hba"
}

ensure_postgres() {
  if pg_up; then
    say "PostgreSQL: running ($PG_HOST:$PG_PORT)"
  elif tcp_open "$PG_HOST" "$PG_PORT"; then
    say "PostgreSQL: starting up; waiting for it"
    wait_until "$WAIT_SECONDS" pg_up ||
      die "PostgreSQL: $PG_HOST:$PG_PORT takes connections but does not accept them after ${WAIT_SECONDS}s" \
        "its log file is in the last column of: pg_lsclusters"
  else
    pg_start
  fi
  pg_ensure_trust
}

# ensure_databases SERVICE...: creates buytickets_<service> for each that is missing.
ensure_databases() {
  local svc db
  for svc in "$@"; do
    [[ $svc =~ ^[a-z][a-z0-9_]*$ ]] || die "bad service name in DATABASES: '$svc'"
    db=buytickets_$svc
    if [[ $(pg_psql -tA -c "SELECT 1 FROM pg_database WHERE datname = '$db'") == 1 ]]; then
      say "database $db: exists"
    else
      pg_psql -c "CREATE DATABASE \"$db\"" || die "PostgreSQL: could not create database $db"
      say "database $db: created"
    fi
  done
}

# drop_test_databases PREFIX: drops databases left over by earlier test runs. One still in use
# belongs to a test run going on now and is left alone.
drop_test_databases() {
  local prefix=$1 stmt found=0 dropped=0 busy=0
  [[ $prefix =~ ^[a-z0-9_]+$ ]] || die "bad test database prefix '$prefix'"
  local like=${prefix//_/\\_}%
  while IFS= read -r stmt; do
    [[ -n $stmt ]] || continue
    found=$((found + 1))
    if [[ $DRY_RUN == 1 ]]; then
      printf '+ psql -c %s\n' "$stmt"
    elif pg_psql -c "$stmt" 2>/dev/null; then
      dropped=$((dropped + 1))
    else
      busy=$((busy + 1))
    fi
  done < <(pg_psql -tA -c "SELECT format('DROP DATABASE IF EXISTS %I', datname)
                           FROM pg_database WHERE datname LIKE '$like' ORDER BY datname")
  if [[ $DRY_RUN == 1 ]]; then
    say "test databases ($prefix*): would drop $found (dry run)"
  elif ((busy > 0)); then
    say "test databases ($prefix*): dropped $dropped leftover, left $busy in use by a running test"
  else
    say "test databases ($prefix*): dropped $dropped leftover"
  fi
}

# ---- Redis ---------------------------------------------------------------------------------

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

# ---- NATS ----------------------------------------------------------------------------------

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
