#!/usr/bin/env bash
# Images benchmark wrapper (scripts/run-bench runs bench/*.sh): see bench/images/pull.sh.
exec "$(dirname "$0")/images/pull.sh" "$@"
