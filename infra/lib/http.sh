# shellcheck shell=bash
# What infra/lambda-smoke and infra/e2e share to drive the functions under
# `cargo lambda watch` over HTTP. Sourced, not run. The caller sets `base` (the
# emulator's http://127.0.0.1:PORT) and `tmp` (a scratch directory), defines `fail`
# and `say`, and counts its checks in `checks`.

# Installs cargo-lambda with pip when `cargo lambda` does not run.
ensure_cargo_lambda() {
  cargo lambda --version >/dev/null 2>&1 && return
  say "installing cargo-lambda (pip)"
  python3 -m pip install --quiet --disable-pip-version-check cargo-lambda ||
    fail "cargo-lambda is not installed and pip could not install it"
  hash -r
  cargo lambda --version >/dev/null 2>&1 ||
    fail "cargo-lambda was installed but \`cargo lambda\` does not run (is pip's bin directory on PATH?)"
}

# call METHOD PATH EXPECTED_STATUS [TOKEN] [JSON_BODY]: the answer lands in $body.
call() {
  local method=$1 path=$2 expected=$3 token=${4:-} data=${5:-}
  local args=(-sS -m 600 -o "$tmp/body" -w '%{http_code}' -X "$method" "$base$path")
  [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
  [ -n "$data" ] && args+=(-H 'content-type: application/json' --data "$data")
  local status
  status=$(curl "${args[@]}") || fail "$method $path: no answer (curl exit $?)"
  body=$(cat "$tmp/body")
  [ "$status" = "$expected" ] ||
    fail "$method $path${data:+ with $data}: expected $expected, got $status: $body"
  checks=$((checks + 1))
  printf '    %-6s %-66s %s\n' "$method" "$path" "$status"
}

# field NAME.PATH: a field of the last answer (`sections.0.sold`).
field() {
  printf '%s' "$body" | python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key)] if isinstance(value, list) else value.get(key)
print("" if value is None else value)' "$1"
}

# expect NAME.PATH VALUE: the last answer has that value there.
expect() {
  local actual
  actual=$(field "$1") || fail "the answer is not the JSON expected: $body"
  [ "$actual" = "$2" ] || fail "expected $1 = $2, got '$actual' in: $body"
}

# call_until SECONDS NAME.PATH VALUE METHOD PATH STATUS [TOKEN]: repeats a read until
# its answer has VALUE at NAME.PATH, for at most SECONDS: the projected routes trail
# the commands by a batch of the projector.
call_until() {
  local seconds=$1 name=$2 value=$3
  shift 3
  local deadline=$((SECONDS + seconds)) before=$checks
  until call "$@" >/dev/null && [ "$(field "$name")" = "$value" ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "$1 $2: $name did not become $value within $seconds s; the last answer: $body"
    sleep 0.5
  done
  checks=$((before + 1))
  printf '    %-6s %-66s %s (%s = %s)\n' "$1" "$2" "$3" "$name" "$value"
}

# A function instance starts on its first invocation (`cargo run`, which may wait for
# cargo's locks). Never give up on a request meanwhile: the emulator keeps an abandoned
# invocation queued, and its late answer upsets the requests after it. So wait for the
# port, then warm each HTTP function once (each serves /v1/openapi.json) with a long
# timeout. A first start on a loaded machine can fail once inside the emulator (it
# answers 500 before the function serves anything): each function gets three tries,
# and every request after the warm-up must pass the first time.
warm_functions() { # WATCH_PID PORT [FUNCTION...] (default: every HTTP function)
  local watch_pid=$1 port=$2
  shift 2
  local functions=("$@")
  [ "${#functions[@]}" -gt 0 ] || functions=(shows reservations payments webhooks queries checkin)
  say "waiting for cargo lambda watch"
  for _ in $(seq 1 120); do
    kill -0 "$watch_pid" 2>/dev/null || fail "cargo lambda watch exited"
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
    fail "cargo lambda watch did not listen on port $port within two minutes"
  say "starting the functions"
  local function attempt status
  for function in "${functions[@]}"; do
    for attempt in 1 2 3; do
      status=$(curl -s -o /dev/null -m 600 -w '%{http_code}' "$base/lambda-url/$function/v1/openapi.json") ||
        fail "the $function function did not answer within ten minutes"
      [ "$status" = 200 ] && break
      printf '    the %s function answered %s while starting (attempt %s)\n' "$function" "$status" "$attempt" >&2
      [ "$attempt" = 3 ] && fail "the $function function answered $status to GET /v1/openapi.json three times"
      sleep 2
    done
  done
}
