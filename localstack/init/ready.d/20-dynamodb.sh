#!/usr/bin/env bash
# LocalStack init hook: creates the DynamoDB read-model tables, as template.yaml does
# on AWS (docs/adr/0011-dynamodb-read-models.md). Point the services at them with
# READ_MODEL_STORE=dynamodb, DYNAMODB_ENDPOINT_URL=http://localhost:4566 and
# DYNAMODB_TABLE_PREFIX (default `ticketing-`, the same here).
set -euo pipefail

prefix=${DYNAMODB_TABLE_PREFIX:-ticketing-}

table() {
  local name=$prefix$1
  shift
  if awslocal dynamodb describe-table --table-name "$name" >/dev/null 2>&1; then
    echo "table $name exists"
    return
  fi
  awslocal dynamodb create-table --table-name "$name" --billing-mode PAY_PER_REQUEST "$@" >/dev/null
  echo "created table $name"
}

table read-sections \
  --attribute-definitions AttributeName=stream_id,AttributeType=S \
    AttributeName=show_id,AttributeType=S AttributeName=section,AttributeType=S \
  --key-schema AttributeName=stream_id,KeyType=HASH \
  --global-secondary-indexes '[{"IndexName":"by_show","KeySchema":[{"AttributeName":"show_id","KeyType":"HASH"},{"AttributeName":"section","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]'

table read-sales-by-hour \
  --attribute-definitions AttributeName=show_id,AttributeType=S AttributeName=bucket,AttributeType=S \
  --key-schema AttributeName=show_id,KeyType=HASH AttributeName=bucket,KeyType=RANGE

table read-customer-reservations \
  --attribute-definitions AttributeName=stream_id,AttributeType=S \
    AttributeName=customer_id,AttributeType=S AttributeName=placed_key,AttributeType=S \
  --key-schema AttributeName=stream_id,KeyType=HASH \
  --global-secondary-indexes '[{"IndexName":"by_customer","KeySchema":[{"AttributeName":"customer_id","KeyType":"HASH"},{"AttributeName":"placed_key","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]'

table read-tickets \
  --attribute-definitions AttributeName=stream_id,AttributeType=S \
    AttributeName=show_id,AttributeType=S AttributeName=holder,AttributeType=S \
    AttributeName=held_key,AttributeType=S \
  --key-schema AttributeName=stream_id,KeyType=HASH \
  --global-secondary-indexes '[{"IndexName":"by_show","KeySchema":[{"AttributeName":"show_id","KeyType":"HASH"},{"AttributeName":"held_key","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}},{"IndexName":"by_holder","KeySchema":[{"AttributeName":"holder","KeyType":"HASH"},{"AttributeName":"held_key","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]'

table read-ticket-revocations \
  --attribute-definitions AttributeName=ticket_id,AttributeType=S \
    AttributeName=show_id,AttributeType=S AttributeName=revoked_at,AttributeType=S \
  --key-schema AttributeName=ticket_id,KeyType=HASH \
  --global-secondary-indexes '[{"IndexName":"by_show","KeySchema":[{"AttributeName":"show_id","KeyType":"HASH"},{"AttributeName":"revoked_at","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]'

table projection-applied \
  --attribute-definitions AttributeName=stream_id,AttributeType=S \
  --key-schema AttributeName=stream_id,KeyType=HASH

table projection-dead-letters \
  --attribute-definitions AttributeName=stream_id,AttributeType=S AttributeName=version,AttributeType=N \
  --key-schema AttributeName=stream_id,KeyType=HASH AttributeName=version,KeyType=RANGE

table projection-checkpoints \
  --attribute-definitions AttributeName=name,AttributeType=S \
  --key-schema AttributeName=name,KeyType=HASH
