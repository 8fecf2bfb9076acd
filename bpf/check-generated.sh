#!/bin/sh
# Fails if the committed bpf2go output (nr_bpfel.go, nr_bpfel.o) is not what
# the C source in this directory compiles to. For CI; needs clang (14, the
# version the objects were generated with: output is byte-for-byte
# reproducible only within one clang major version).
set -eu
cd "$(dirname "$0")"
NETRECONCILE_REQUIRE_CLANG=1 exec go test -count=1 -run '^TestGeneratedUpToDate$' .
