#!/bin/sh
# A stand-in agent: prints the names of the secrets it received (never their values), then
# exits 0. Used by the README's examples, the Dockerfile's CMD and the tests.
set -eu
for name in GEMINI_API_KEY DATABASE_URL LOG_LEVEL TLS_KEY_FILE SENTRY_DSN $(env | sed -n 's/^\(STRIPE_[A-Z_]*\)=.*/\1/p' | sort); do
  eval "set=\${$name+x}"
  if [ -n "$set" ]; then
    echo "received $name"
  else
    echo "missing  $name"
  fi
done
if [ -n "${ASS_AGENT_KEY+x}" ]; then
  echo "ASS_AGENT_KEY leaked into the agent" >&2
  exit 1
fi
