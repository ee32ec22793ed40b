#!/bin/sh
# MinIO's buckets and keys for the lake, run by the minio-init service (quay.io/minio/mc) each
# time the compose stack starts, once MinIO is healthy. Every step creates or updates, so a
# re-run changes nothing, and a key rotated in .env takes effect on the next start.
#  - the four layer buckets, named as the app's settings name them;
#  - the lake's key (RATATOUILLE_S3_ACCESS_KEY): everything on those buckets, nothing else;
#  - the playground's key (RATATOUILLE_S3_QUERY_ACCESS_KEY): read-only on bronze, silver, gold.
# The root account stays with MinIO and this script. POSIX sh: the mc image has no bash tools.
set -eu

ALIAS=lake
BRONZE=${RATATOUILLE_BUCKET_BRONZE:-bronze}
SILVER=${RATATOUILLE_BUCKET_SILVER:-silver}
GOLD=${RATATOUILLE_BUCKET_GOLD:-gold}
LANDING=${RATATOUILLE_BUCKET_LANDING:-landing}
READ_WRITE=ratatouille-readwrite
READ_ONLY=ratatouille-readonly

mc alias set "$ALIAS" "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" \
  >/dev/null

for bucket in "$BRONZE" "$SILVER" "$GOLD" "$LANDING"; do
  mc mb --ignore-existing "$ALIAS/$bucket"
done

# The buckets given and their objects, as the items of a JSON list of ARNs.
arns() {
  sep=""
  for bucket in "$@"; do
    printf '%s"arn:aws:s3:::%s", "arn:aws:s3:::%s/*"' "$sep" "$bucket" "$bucket"
    sep=", "
  done
}

# policy NAME ACTIONS BUCKET...: create or replace a policy allowing ACTIONS on the buckets.
policy() {
  name=$1 actions=$2
  shift 2
  file="/tmp/$name.json"
  resources=$(arns "$@")
  statement="{\"Effect\": \"Allow\", \"Action\": [$actions], \"Resource\": [$resources]}"
  printf '{"Version": "2012-10-17", "Statement": [%s]}\n' "$statement" >"$file"
  mc admin policy create "$ALIAS" "$name" "$file" >/dev/null
}

# user ACCESS_KEY SECRET_KEY POLICY: create the user (or set its secret) with the policy.
user() {
  mc admin user add "$ALIAS" "$1" "$2" >/dev/null
  case "$(mc admin user info "$ALIAS" "$1")" in
    *"$3"*) ;;  # attached already; attaching again is an error
    *) mc admin policy attach "$ALIAS" "$3" --user "$1" >/dev/null ;;
  esac
}

policy "$READ_WRITE" '"s3:*"' "$BRONZE" "$SILVER" "$GOLD" "$LANDING"
# Listing and reading is all DuckDB's httpfs does for a query: no landing, no writes.
policy "$READ_ONLY" '"s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"' \
  "$BRONZE" "$SILVER" "$GOLD"
user "$RATATOUILLE_S3_ACCESS_KEY" "$RATATOUILLE_S3_SECRET_KEY" "$READ_WRITE"
user "$RATATOUILLE_S3_QUERY_ACCESS_KEY" "$RATATOUILLE_S3_QUERY_SECRET_KEY" "$READ_ONLY"

echo "minio-init: buckets $BRONZE, $SILVER, $GOLD, $LANDING;" \
  "key $RATATOUILLE_S3_ACCESS_KEY reads and writes them," \
  "key $RATATOUILLE_S3_QUERY_ACCESS_KEY only reads $BRONZE, $SILVER, $GOLD."
