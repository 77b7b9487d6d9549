#!/bin/sh
echo "$GREETING: $(id -un) in $(pwd), hostname $(hostname)"
cat /app/motd.txt /app/build-info.txt
