#!/bin/sh
# For the host runtime's etcd and etcdctl in a folder: "etcd VERSION" and "etcdctl
# VERSION" as they say it ("etcd Version: 3.5.21", "etcdctl version: 3.5.21"),
# "NAME -" when one is missing or not executable, "NAME ?" when it says nothing usable.
# Argument: the folder.

dir=$1
for b in etcd etcdctl; do
  if [ ! -x "$dir/$b" ]; then echo "$b -"; continue; fi
  if [ "$b" = etcd ]; then ask=--version; else ask=version; fi
  said=$("$dir/$b" "$ask" 2>/dev/null | awk 'NR == 1 {print $3}')
  echo "$b ${said:-?}"
done
