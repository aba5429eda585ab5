# shellcheck shell=bash
# Small helpers for scripts/dev: messages, running as root, Debian packages and TCP probes.
# Sourced, never run; expects `set -euo pipefail` from the caller.

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> warning: %s\n' "$*" >&2; }

# die LINE...: prints the first line as the error and the others as hints, then exits 1.
die() {
  printf '==> error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '    %s\n' "$line" >&2; done
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# run CMD...: runs CMD, or under --dry-run only prints it.
DRY_RUN=${DRY_RUN:-0}
run() {
  if [[ $DRY_RUN == 1 ]]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# as_root CMD...: runs CMD as root, through sudo when the script itself is not root.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "'$*' needs root, and sudo is not installed" \
      "run scripts/dev as root, or install sudo and give your user the right to use it"
  fi
}

# install_packages PKG...: installs Debian packages, running `apt-get update` once per invocation.
APT_UPDATED=0
install_packages() {
  (($# > 0)) || return 0
  if ! have apt-get; then
    die "missing: $*" \
      "this script installs packages with apt-get (Debian/Ubuntu); install the equivalents" \
      "with your system's package manager, then run it again"
  fi
  if [[ $EUID -ne 0 ]]; then
    have sudo || die "installing $* needs root, and sudo is not installed" \
      "run as root: apt-get install -y $*"
    say "installing $* needs root: using sudo (it may ask for your password)"
  fi
  say "installing: $*"
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -q ||
      die "apt-get update failed" "check the network and /etc/apt/sources.list*, then run it again"
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ||
    die "apt-get install $* failed" "the output above says why; fix it and run scripts/dev again"
}

# tcp_open HOST PORT: true when something accepts TCP connections there.
tcp_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# tcp_first_line HOST PORT [LINE]: connects, sends LINE (with CRLF) if given, prints the first
# line the server answers with. Fails when nothing listens or nothing comes back in 2 seconds.
tcp_first_line() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 4 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    if [[ -n $3 ]]; then printf "%s\r\n" "$3" >&3; fi
    IFS= read -r -t 2 line <&3 || exit 1
    printf "%s\n" "${line%[[:cntrl:]]}"
  ' _ "$1" "$2" "${3:-}" 2>/dev/null
}

# wait_until SECONDS CMD...: true as soon as CMD succeeds, false once SECONDS have passed.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
