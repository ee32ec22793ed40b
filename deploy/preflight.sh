#!/usr/bin/env bash
# The compose stack's first step (service `preflight`): every other service waits for it to
# succeed. Compose's ${VAR:?} already stops on a secret that is unset or empty; this refuses
# what interpolation lets through: well-known defaults (MinIO's minioadmin), keys shorter than
# MinIO accepts (it would fail later, less clearly), secrets short or easy to guess, the same
# key for two roles, and an app without a password. It prints every problem at once, each with what to do.
set -uo pipefail

problems=()
# Values people copy from examples and docs; compared case-insensitively.
DEFAULTS=" minioadmin password postgres admin changeme change-me change-me-please secret "
MIN_SECRET=8  # MinIO's minimum for secret keys and the root password (strength: see below)
MIN_KEY=3  # MinIO's minimum for access keys and the root user

problem() { problems+=("$*"); }
passed=()  # names that passed `check`: account names, then secrets to rate for strength

# check NAME MIN_LENGTH: the variable is set, long enough and not a well-known default.
check() {
  local name=$1 min=$2 value=${!1:-}
  if [[ -z $value ]]; then
    problem "$name is empty."
  elif ((${#value} < min)); then
    problem "$name is ${#value} characters; use at least $min."
  elif [[ $DEFAULTS == *" ${value,,} "* ]]; then
    problem "$name is a well-known default; choose your own."
  else
    passed+=("$name")
  fi
}

# Rate every secret that passed: length and common passwords, with the account names as
# context (lakehouse/cli/secret_strength.py, the rule doctor and the login use too). Values go
# NUL-separated on stdin, never on a command line.
strength() {
  local name out status
  out=$(for name in "${passed[@]}"; do printf '%s\0%s\0' "$name" "${!name}"; done |
    python3 -m lakehouse.cli.secret_strength)
  status=$?
  if ((status == 3)); then
    while IFS= read -r line; do problem "$line"; done <<<"$out"
  elif ((status != 0)); then
    problem "the secret strength check could not run (python3 -m lakehouse.cli.secret_strength" \
"exited with $status); nothing can be said about the secrets."
  fi
}

# distinct A B: two keys that must not be the same account.
distinct() {
  if [[ -n ${!1:-} && ${!1:-} == "${!2:-}" ]]; then
    problem "$1 and $2 are the same; each role needs its own key."
  fi
}

check MINIO_ROOT_USER $MIN_KEY
check MINIO_ROOT_PASSWORD $MIN_SECRET
check RATATOUILLE_S3_ACCESS_KEY $MIN_KEY
check RATATOUILLE_S3_SECRET_KEY $MIN_SECRET
check RATATOUILLE_S3_QUERY_ACCESS_KEY $MIN_KEY
check RATATOUILLE_S3_QUERY_SECRET_KEY $MIN_SECRET
check DAGSTER_PG_PASSWORD $MIN_SECRET
check JUPYTER_TOKEN $MIN_SECRET
distinct RATATOUILLE_S3_ACCESS_KEY MINIO_ROOT_USER
distinct RATATOUILLE_S3_QUERY_ACCESS_KEY MINIO_ROOT_USER
distinct RATATOUILLE_S3_QUERY_ACCESS_KEY RATATOUILLE_S3_ACCESS_KEY

# The app is the part meant to be shared: it never runs open here.
password=${RATATOUILLE_APP_PASSWORD:-}
hash=${RATATOUILLE_APP_PASSWORD_HASH:-}
hash_shape='^pbkdf2_sha256\$[0-9]+\$[^$]+\$[^$]+$'
if [[ -z $password && -z $hash ]]; then
  problem "RATATOUILLE_APP_PASSWORD and RATATOUILLE_APP_PASSWORD_HASH are both empty; set one" \
"(the hash from \`ratatouille hash-password\`)."
elif [[ -n $password ]]; then
  check RATATOUILLE_APP_PASSWORD $MIN_SECRET
elif [[ ! $hash =~ $hash_shape ]]; then
  problem "RATATOUILLE_APP_PASSWORD_HASH is not a \`ratatouille hash-password\` hash. In .env," \
"put it in single quotes, or compose replaces its \$ parts with (empty) variables."
fi

((${#passed[@]})) && strength

if ((${#problems[@]})); then
  {
    echo "preflight: the stack will not start until these are fixed in .env (see .env.example):"
    printf '  - %s\n' "${problems[@]}"
  } >&2
  exit 1
fi
echo "preflight: secrets look fine."
