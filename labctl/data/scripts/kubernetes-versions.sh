#!/bin/sh
# For each binary: "NAME VERSION" as `NAME --version` says it ("Kubernetes v1.36.3"),
# "NAME -" when it is missing or not executable, "NAME ?" when it says nothing usable.
# All binaries are asked at once (each line names its binary; the order is any): a
# Go binary takes 50-100 ms to start, five of them one after another most of a
# converged run's check.

dir=$1; shift
for b in "$@"; do
  (
    if [ ! -x "$dir/$b" ]; then echo "$b -"; exit 0; fi
    said=$("$dir/$b" --version 2>/dev/null | awk 'NR == 1 {print $2}')
    echo "$b ${said:-?}"
  ) &
done
wait
