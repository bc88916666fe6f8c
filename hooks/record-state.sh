#!/bin/sh
# record-state.sh STAGE FILE: append "STAGE <the state JSON from stdin>" to FILE.
# A hook program for coop's tests and a template for your own: the runtime passes the
# container's state (ociVersion, id, status, pid, bundle, annotations) on stdin.
stage=$1
file=$2
printf '%s %s\n' "$stage" "$(cat)" >> "$file"
