#!/usr/bin/env bash
# Raft side-by-side with etcd (see bench/raft/compare.sh).
exec "$(dirname "$0")/raft/compare.sh" "$@"
