#!/bin/bash
# LocalStack init hook (ready stage): the Secrets Manager secret whose SecretString is
# the whole PostgreSQL URL, as template.yaml's DatabaseSecretArn expects. Runs on every
# start of the container; it updates the value when the secret already exists, so that
# it is harmless to run again.
set -euo pipefail

name=${TICKETING_DATABASE_SECRET_NAME:-ticketing/database-url}
url=${TICKETING_DATABASE_SECRET_URL:-postgres://ticketing:ticketing@127.0.0.1:5433/ticketing}

if awslocal secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1; then
  awslocal secretsmanager put-secret-value --secret-id "$name" --secret-string "$url" >/dev/null
  echo "10-secrets: updated secret $name"
else
  awslocal secretsmanager create-secret --name "$name" \
    --description "PostgreSQL URL of the ticketing event store (DATABASE_URL)" \
    --secret-string "$url" >/dev/null
  echo "10-secrets: created secret $name"
fi
awslocal secretsmanager describe-secret --secret-id "$name" --query ARN --output text
