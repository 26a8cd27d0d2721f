#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s) from its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
for t in config okta_users telus_pages link_header rate_headers; do
  echo "== $t ($secs s)"
  # New inputs go to fuzz/work/ (ignored by git); the committed seeds are read only.
  mkdir -p "fuzz/work/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096
done
