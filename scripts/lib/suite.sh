# shellcheck shell=bash
# Runs the debug `buytickets-suite` binary as `scripts/dev up` does, for the scripts that test it
# from the outside (scripts/e2e, scripts/contract): each start gets fresh databases (dropped by
# the next `scripts/dev test`, like every test database), its own NATS namespace and its own
# Redis job queue. Sourced after lib/common.sh and lib/services.sh; expects ROOT from the caller.
# Every suite started is stopped when the caller exits.

SUITE_DATABASES=(auth tickets orders payments notifications)
SUITE_PG_URL=postgres://$PG_USER@$PG_HOST:$PG_PORT
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET == /* ]] || TARGET=$ROOT/$TARGET
SUITE_BIN=$TARGET/debug/buytickets-suite
export SQLX_OFFLINE=${SQLX_OFFLINE:-true}

SUITE_PIDS=()
stop_suites() {
  local pid
  for pid in "${SUITE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_suites EXIT

# Builds the debug suite binary (nothing to do when it is up to date).
build_suite() {
  say "building buytickets-suite"
  cargo build -q -p buytickets-suite
}

# A port nothing listens on, from $1 up.
free_port() {
  local port=$1
  while tcp_open 127.0.0.1 "$port"; do port=$((port + 1)); done
  echo "$port"
}

# start_suite NAME PORT LOG_DIR [VAR=VALUE...]: starts the suite in the background, its log in
# LOG_DIR/NAME.log, and waits until /readyz says ready.
start_suite() {
  local name=$1 port=$2 logs=$3
  shift 3
  local run_id svc db envs=()
  run_id=${name}_$(date +%s)_$$
  mkdir -p "$logs"
  for svc in "${SUITE_DATABASES[@]}"; do
    db=bt_test_e2e_${run_id}_$svc
    pg_psql -q -c "CREATE DATABASE \"$db\"" || die "PostgreSQL: could not create $db"
    envs+=("${svc^^}_DATABASE_URL=$SUITE_PG_URL/$db")
  done
  env "${envs[@]}" "$@" \
    PORT="$port" NATS_URL="nats://127.0.0.1:$NATS_PORT" NATS_PREFIX="e2e_$run_id" NATS_STREAM_MAX_BYTES=-1 \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" EXPIRATION_QUEUE="t$(printf '%012d' "$$"):e2e:$run_id" \
    SESSION_CACHE_PREFIX="t$(printf '%012d' "$$"):e2e:$run_id:session:" \
    JWT_KEY="e2e-only-key-$(head -c 24 /dev/urandom | od -An -vtx1 | tr -d ' \n')" \
    COOKIE_SECURE=false LOG_FORMAT=json RUST_LOG=warn \
    "$SUITE_BIN" >"$logs/$name.log" 2>&1 &
  SUITE_PIDS+=($!)
  local i
  for ((i = 0; i < 120; i++)); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      say "suite '$name' ready at http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "${SUITE_PIDS[-1]}" 2>/dev/null || die "suite '$name' exited; see $logs/$name.log"
    sleep 0.5
  done
  die "suite '$name' was not ready after 60 s; see $logs/$name.log"
}
