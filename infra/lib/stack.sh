# shellcheck shell=bash
# What infra/bootstrap, status, reset, cleanup and e2e share: which stack runs the
# services, where they are, and how to start, check and stop them. Sourced, not run.
#
# Two modes (docs/adr/0013-local-stack-modes.md):
#
#   docker  docker-compose.yml: PostgreSQL 16 on 127.0.0.1:5433, RedPanda on
#           127.0.0.1:9092, RedPanda Console on 127.0.0.1:8088, LocalStack on
#           127.0.0.1:4566, Prometheus on 127.0.0.1:9090, Grafana on 127.0.0.1:3000.
#   native  the machine's own PostgreSQL on 127.0.0.1:5432 (started, and installed with
#           apt-get, when missing) and a `tansu` broker (a Kafka-protocol broker, SQLite
#           storage) on 127.0.0.1:9092, run in the background from the state directory.
#
# TICKETING_STACK=docker|native chooses; unset, it is docker when `docker compose`
# reaches an engine, native otherwise. The scripts point the binaries at the stack
# they manage (DATABASE_URL, KAFKA_BROKERS, exported, so they win over a `.env`):
#
#   TICKETING_DATABASE_URL   default: the mode's server, database TICKETING_DATABASE_NAME
#   TICKETING_DATABASE_NAME  default: ticketing
#   TICKETING_KAFKA_BROKERS  default: 127.0.0.1:9092
#   TICKETING_STATE_DIR      native mode's broker files and logs (default .ticketing/)
#   TICKETING_KAFKA_PORT     native mode's broker port (default 9092)
#   TANSU_BIN                the tansu program (default: tansu on PATH, else ~/.cargo/bin)

set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

script_name=$(basename "$0")
say() { printf '==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$script_name" "$*" >&2; }
fail() {
  printf '%s FAILED: %s\n' "$script_name" "$*" >&2
  exit 1
}

state_dir=${TICKETING_STATE_DIR:-$repo_root/.ticketing}

# ---- mode -------------------------------------------------------------------------

docker_engine_reachable() {
  command -v docker >/dev/null 2>&1 &&
    docker compose version >/dev/null 2>&1 &&
    docker info >/dev/null 2>&1
}

stack_mode() {
  case "${TICKETING_STACK:-}" in
    docker)
      docker_engine_reachable ||
        fail "TICKETING_STACK=docker but \`docker compose\` cannot reach a Docker engine (is it running? is the compose plugin installed?)"
      echo docker
      ;;
    native) echo native ;;
    "") if docker_engine_reachable; then echo docker; else echo native; fi ;;
    *) fail "TICKETING_STACK must be docker or native, not '${TICKETING_STACK}'" ;;
  esac
}

mode=$(stack_mode)

# RedPanda's port is the compose file's; tansu's can move (infra/e2e runs its own).
kafka_port=9092
if [ "$mode" = native ]; then
  kafka_port=${TICKETING_KAFKA_PORT:-9092}
  case "$kafka_port" in '' | *[!0-9]*) fail "TICKETING_KAFKA_PORT must be a port number, not '$kafka_port'" ;; esac
fi

database=${TICKETING_DATABASE_NAME:-ticketing}
case "$database" in
  *[!a-z0-9_]* | "") fail "TICKETING_DATABASE_NAME may hold only a-z, 0-9 and _, not '$database'" ;;
esac
if [ "$mode" = docker ]; then
  pg_port=5433
  default_database_url="postgres://ticketing:ticketing@127.0.0.1:$pg_port/$database"
else
  pg_port=5432
  default_database_url="postgres://postgres:postgres@127.0.0.1:$pg_port/$database"
fi
database_url=${TICKETING_DATABASE_URL:-$default_database_url}
kafka_brokers=${TICKETING_KAFKA_BROKERS:-127.0.0.1:$kafka_port}
export DATABASE_URL=$database_url KAFKA_BROKERS=$kafka_brokers

# The URL without its password, for messages.
redacted() { printf '%s' "$1" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#'; }

# ---- tools ------------------------------------------------------------------------

ensure_apt_package() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return
  command -v apt-get >/dev/null 2>&1 || fail "$1 is needed (Debian package $2) and there is no apt-get to install it"
  say "installing $2"
  apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null ||
    fail "$1 is needed and \`apt-get install $2\` failed"
}

ensure_tools() {
  ensure_apt_package curl curl
  ensure_apt_package python3 python3
  ensure_apt_package psql postgresql-client
  ensure_apt_package pg_isready postgresql-client
}

# The workspace's binaries, built once (quietly) and then run directly.
target_dir() {
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    printf '%s\n' "$CARGO_TARGET_DIR"
  else
    cargo metadata --format-version 1 --no-deps |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
  fi
}

build_tools() {
  say "building the ticketing and projector binaries"
  cargo build --locked --quiet --bin ticketing --bin projector ||
    fail "cargo build --bin ticketing --bin projector failed"
  bin_dir="$(target_dir)/debug"
}

ticketing() { "$bin_dir/ticketing" "$@"; }
projector() { "$bin_dir/projector" "$@"; }

# ---- PostgreSQL -------------------------------------------------------------------

pg_up() { pg_isready -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; }

# psql on a database of the stack's server (default: the application's), no prompt.
psql_on() { # DATABASE ARGS...
  local database=$1
  shift
  local url
  url=$(printf '%s' "$database_url" | sed -E "s#/[^/?]*(\\?|$)#/$database\\1#")
  psql "$url" -X -q -v ON_ERROR_STOP=1 -w "$@"
}

database_name() { printf '%s' "$database_url" | sed -E 's#.*/([^/?]+)(\?.*)?$#\1#'; }

# Starts the machine's PostgreSQL (installing it first on a machine without one), and
# makes sure the URL's user can log in over TCP.
start_native_postgres() {
  if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      command -v apt-get >/dev/null 2>&1 ||
        fail "PostgreSQL is not running on 127.0.0.1:$pg_port and cannot be installed here (no apt-get)"
      say "installing PostgreSQL (apt-get)"
      apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null ||
        fail "apt-get install postgresql failed"
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || fail "no PostgreSQL cluster under /etc/postgresql"
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      fail "pg_ctlcluster $version main start failed"
    wait_for 30 pg_up || fail "PostgreSQL did not start on 127.0.0.1:$pg_port"
  fi
  if ! psql_on postgres -tAc 'select 1' >/dev/null 2>&1 && [ -z "${TICKETING_DATABASE_URL:-}" ]; then
    # A fresh cluster asks for a password over TCP: give postgres the URL's one.
    say "setting the postgres user's password for TCP logins"
    su postgres -c "psql -q -c \"alter user postgres password 'postgres'\"" >/dev/null ||
      fail "cannot set the postgres user's password"
  fi
  psql_on postgres -tAc 'select 1' >/dev/null ||
    fail "cannot log in to PostgreSQL as $(redacted "$database_url")"
}

ensure_database() {
  local name
  name=$(database_name)
  if [ "$(psql_on postgres -tAc "select 1 from pg_database where datname = '$name'")" != 1 ]; then
    say "creating the database $name"
    psql_on postgres -c "create database \"$name\"" >/dev/null || fail "cannot create the database $name"
  fi
}

# ---- the broker -------------------------------------------------------------------

broker_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null; }

tansu_program() {
  if [ -n "${TANSU_BIN:-}" ]; then
    printf '%s\n' "$TANSU_BIN"
  elif command -v tansu >/dev/null 2>&1; then
    command -v tansu
  else
    printf '%s\n' "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
  fi
}

tansu_pid() {
  local pid
  pid=$(cat "$state_dir/tansu.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

start_tansu() {
  if tansu_pid >/dev/null; then
    return
  fi
  if broker_listening; then
    fail "something that is not this stack's tansu already listens on 127.0.0.1:$kafka_port; stop it first"
  fi
  local tansu
  tansu=$(tansu_program)
  "$tansu" --version >/dev/null 2>&1 ||
    fail "the tansu broker is not installed; install it with: cargo install tansu --locked --features libsql (about 15 minutes), or set TANSU_BIN"
  mkdir -p "$state_dir"
  say "starting tansu on 127.0.0.1:$kafka_port (storage $state_dir/tansu.db, log $state_dir/tansu.log)"
  (
    cd "$state_dir"
    exec setsid "$tansu" broker --storage-engine sqlite://tansu.db \
      --listener-url "tcp://127.0.0.1:$kafka_port" \
      --advertised-listener-url "tcp://127.0.0.1:$kafka_port" </dev/null >>tansu.log 2>&1
  ) &
  echo $! >"$state_dir/tansu.pid"
  wait_for 30 broker_listening || {
    tail -n 20 "$state_dir/tansu.log" >&2 || true
    fail "tansu did not listen on 127.0.0.1:$kafka_port (log above)"
  }
}

stop_tansu() {
  local pid
  pid=$(tansu_pid) || {
    rm -f "$state_dir/tansu.pid"
    return 0
  }
  say "stopping tansu (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$state_dir/tansu.pid"
}

# The broker as the project's own client sees it: a metadata request, the topics'
# watermarks and the projector group's offsets, as JSON (`projector status`).
bus_status_json() { projector status --timeout-seconds "${1:-10}"; }

# ---- docker -----------------------------------------------------------------------

compose() { docker compose --project-directory "$repo_root" -f "$repo_root/docker-compose.yml" "$@"; }

# The health docker reports for a compose service: healthy, starting, unhealthy, or
# `absent` when it has no running container.
compose_health() {
  local id
  id=$(compose ps -q "$1" 2>/dev/null)
  [ -n "$id" ] || {
    echo absent
    return
  }
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id"
}

# ---- waiting ----------------------------------------------------------------------

# Runs COMMAND until it succeeds, for at most SECONDS; fails (returns 1) after that.
wait_for() { # SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Asks for a yes before something destructive, unless --yes was given.
confirm() { # QUESTION
  [ "${assume_yes:-false}" = true ] && return
  [ -t 0 ] || fail "refusing without confirmation: run it from a terminal, or pass --yes"
  local answer
  read -r -p "$1 [y/N] " answer
  case "$answer" in
    y | Y | yes | YES) ;;
    *) fail "nothing was changed" ;;
  esac
}
