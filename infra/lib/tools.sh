# shellcheck shell=bash
# Python tools from PyPI, each in its own virtualenv under TICKETING_TOOLS_DIR (default
# ~/.cache/ticketing-tools), outside the repository. Sourced, not run; the caller
# defines `say` and `fail`.

tools_dir=${TICKETING_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ticketing-tools}

# tool NAME PACKAGE: the path of NAME, from PATH or from its own virtualenv (created
# and filled with the PyPI package PACKAGE when missing).
tool() {
  local name=$1 package=$2 venv="$tools_dir/$1"
  # Asked for its version, so that a pyenv shim of another Python does not count.
  if "$name" --version >/dev/null 2>&1; then
    command -v "$name"
    return
  fi
  if [ ! -x "$venv/bin/$name" ]; then
    say "installing $package into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || fail "cannot create a virtualenv in $venv (python3 -m venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2 ||
      fail "cannot install $package from PyPI"
  fi
  printf '%s\n' "$venv/bin/$name"
}
