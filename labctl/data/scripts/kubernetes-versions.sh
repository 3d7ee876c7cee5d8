#!/bin/sh
# For each binary: "NAME VERSION" as `NAME --version` says it ("Kubernetes v1.36.3"),
# "NAME -" when it is missing or not executable, "NAME ?" when it says nothing usable.

dir=$1; shift
for b in "$@"; do
  if [ ! -x "$dir/$b" ]; then echo "$b -"; continue; fi
  said=$("$dir/$b" --version 2>/dev/null | awk 'NR == 1 {print $2}')
  echo "$b ${said:-?}"
done
