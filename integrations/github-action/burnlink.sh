#!/usr/bin/env bash
# burnlink's GitHub Action (action.yml runs this with its inputs as BURNLINK_* variables).
#
#   share: the value (BURNLINK_VALUE, piped, never an argument) or file (BURNLINK_FILE) is
#          encrypted here with the burnlink CLI; the link, manage link and expiry go to
#          $GITHUB_OUTPUT, each link masked first.
#   get:   the link (masked first) is opened here; the value goes to a new file (mode 0600,
#          BURNLINK_OUTPUT_FILE) or, masked line by line, to $GITHUB_ENV as BURNLINK_ENV_NAME.
#
# Nothing secret is ever printed except inside ::add-mask:: commands, which the runner
# consumes. Errors are the CLI's one line (which never holds a value, key or token).
set -euo pipefail

cli=${BURNLINK_CLI:-burnlink}

fail() {
  echo "::error title=burnlink::$1"
  exit 1
}

# A workflow command's data: % and line breaks escaped, as the runner unescapes them.
escape() {
  local text=${1//%/%25}
  text=${text//$'\r'/%0D}
  printf '%s' "${text//$'\n'/%0A}"
}

# Mask a value in the logs: every line of it (the runner masks line by line), and the whole.
mask() {
  local value=$1 line
  [ -n "$value" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [ -z "$line" ] || echo "::add-mask::$(escape "$line")"
  done <<<"$value"
  case $value in *$'\n'*) echo "::add-mask::$(escape "$value")" ;; esac
}

# One member of the CLI's JSON answer, read with the Python burnlink runs on.
member() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

mask "${BURNLINK_TOKEN:-}"
mask "${BURNLINK_PASSPHRASE:-}"
[ -n "${BURNLINK_TOKEN:-}" ] || unset BURNLINK_TOKEN
[ -n "${BURNLINK_PASSPHRASE:-}" ] || unset BURNLINK_PASSPHRASE

share() {
  [ -n "${BURNLINK_SERVER:-}" ] || fail "share needs the server input"
  local args=(share --json --server "$BURNLINK_SERVER") answer
  [ -z "${BURNLINK_TTL:-}" ] || args+=(--ttl "$BURNLINK_TTL")
  [ -z "${BURNLINK_VIEWS:-}" ] || args+=(--views "$BURNLINK_VIEWS")
  if [ -n "${BURNLINK_FILE:-}" ] && [ -n "${BURNLINK_VALUE:-}" ]; then
    fail "give either the value or the file input, not both"
  elif [ -n "${BURNLINK_FILE:-}" ]; then
    answer=$("$cli" "${args[@]}" --file "$BURNLINK_FILE" </dev/null)
  elif [ -n "${BURNLINK_VALUE:-}" ]; then
    answer=$(printf '%s' "$BURNLINK_VALUE" | "$cli" "${args[@]}")
  else
    fail "share needs the value or the file input (an empty value cannot be shared)"
  fi
  local link manage expires
  link=$(member url <<<"$answer")
  manage=$(member manage_url <<<"$answer")
  expires=$(member expires_at <<<"$answer")
  mask "$link"
  mask "$manage"
  {
    echo "link=$link"
    echo "manage-link=$manage"
    echo "expires-at=$expires"
  } >>"$GITHUB_OUTPUT"
  echo "burnlink: shared; the link (output 'link') expires at $expires."
}

get() {
  [ -n "${BURNLINK_LINK:-}" ] || fail "get needs the link input"
  mask "$BURNLINK_LINK"
  if [ -n "${BURNLINK_OUTPUT_FILE:-}" ] && [ -n "${BURNLINK_ENV_NAME:-}" ]; then
    fail "give either env-name or output-file, not both"
  elif [ -n "${BURNLINK_OUTPUT_FILE:-}" ]; then
    [ ! -e "$BURNLINK_OUTPUT_FILE" ] || fail "output-file already exists; burnlink does not overwrite it"
    "$cli" get "$BURNLINK_LINK" --output "$BURNLINK_OUTPUT_FILE"
    echo "path=$BURNLINK_OUTPUT_FILE" >>"$GITHUB_OUTPUT"
  elif [ -n "${BURNLINK_ENV_NAME:-}" ]; then
    local name=$BURNLINK_ENV_NAME value delimiter
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "env-name must be a variable name (letters, digits, _)"
    # tr, not ${name^^}: macOS runners have bash 3.2.
    case $(printf '%s' "$name" | tr '[:lower:]' '[:upper:]') in
      GITHUB_* | RUNNER_* | BURNLINK_* | PATH | NODE_OPTIONS | LD_PRELOAD | BASH_ENV)
        fail "env-name must not be one the runner or a shell relies on" ;;
    esac
    # A sentinel keeps the value's own trailing newlines, which $(...) would drop.
    value=$("$cli" get "$BURNLINK_LINK" && printf x)
    value=${value%x}
    mask "$value"
    delimiter="burnlink_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    [[ $value != *"$delimiter"* ]] || fail "could not pick a delimiter; try again"
    printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$GITHUB_ENV"
    echo "burnlink: the secret is in \$$name for the next steps (masked)."
  else
    fail "get needs env-name or output-file"
  fi
}

case ${BURNLINK_MODE:-} in
  share) share ;;
  get) get ;;
  *) fail "mode must be share or get" ;;
esac
