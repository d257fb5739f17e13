#!/bin/bash
# Time the README's main job from a fresh install: a new clone, a new virtual
# environment, and empty pip and data caches (the data wheels are downloaded
# again), as issue 5 asks ("spectok bench runs from a fresh install in under
# 15 minutes").
#
# Usage: bash benchmarks/fresh_install_bench.sh [WORKDIR]   (default /tmp/spectok-fresh)
# WORKDIR is deleted first. Prints the install time, the bench's time and the total.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=${1:-/tmp/spectok-fresh}
rm -rf "$work"
git clone -q "$repo" "$work"
cd "$work"
export XDG_CACHE_HOME="$work/.cache" PIP_NO_CACHE_DIR=1
start=$(date +%s)
python3 -m venv venv
. venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0 && pip install -q -e .
installed=$(date +%s)
spectok info
spectok bench -o bench-report.md
done=$(date +%s)
echo "install $((installed - start)) s; spectok info + bench $((done - installed)) s;" \
     "total $((done - start)) s"
