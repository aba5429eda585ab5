# shellcheck shell=bash
# PostgreSQL for the suite and its tests: find the server, install and start it without
# systemd when it is missing, let this machine's connections in without a password, and make
# or drop databases. Sourced by lib/services.sh; expects PG_HBA_MARK, WAIT_SECONDS and
# record_started from there.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
# The tests run several services side by side, each with its own connection pool (up to 20):
# at Debian's default of 100 connections, parallel test runs were refused connections.
PG_MAX_CONNECTIONS=300

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
  if (($(as_root pg_conftool -s "$ver" "$name" show max_connections 2>/dev/null || echo 0) < PG_MAX_CONNECTIONS)); then
    say "PostgreSQL: setting max_connections = $PG_MAX_CONNECTIONS in the postgresql.conf of $ver/$name"
    as_root pg_conftool "$ver" "$name" set max_connections "$PG_MAX_CONNECTIONS" ||
      die "PostgreSQL: pg_conftool $ver $name set max_connections failed"
  fi
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
  pg_note_connection_limit
}

# A server this script did not start is never restarted; if it takes fewer connections than
# the tests may open, say how to raise the limit.
pg_note_connection_limit() {
  local limit
  limit=$(pg_psql -tA -c 'SHOW max_connections' 2>/dev/null) || return 0
  if ((limit < PG_MAX_CONNECTIONS)); then
    warn "PostgreSQL: max_connections is $limit, below the $PG_MAX_CONNECTIONS the parallel tests may need;" \
      "to raise it: psql -h $PG_HOST -U $PG_USER -c 'ALTER SYSTEM SET max_connections = $PG_MAX_CONNECTIONS', then restart PostgreSQL"
  fi
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
