#!/usr/bin/env bash
# Builds the .deb and checks it and the unit, and tests the alert rules. Needs cargo-deb
# (`cargo install cargo-deb`), promtool (Debian's `prometheus` package), and systemd-analyze
# where available. Run from the repo root: bash packaging/verify.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v systemd-analyze >/dev/null; then
  # The binary path in the unit must exist for verify; point it at the build.
  tmp=$(mktemp -d)
  cargo build --release --locked
  sed "s|/usr/bin/okta-telus-sync|$PWD/target/release/okta-telus-sync|g" packaging/okta-telus-sync.service > "$tmp/okta-telus-sync.service"
  systemd-analyze verify "$tmp/okta-telus-sync.service"
  for line in 'RestartPreventExitStatus=2' 'MemoryMax=' 'LimitNOFILE=' 'PrivateIPC=true' \
      'LoadCredential=okta-telus-sync:/etc/okta-telus-sync/credentials'; do
    grep -q "^$line" packaging/okta-telus-sync.service || { echo "unit lacks $line"; exit 1; }
  done
  grep -q '^d /var/lib/okta-telus-sync 0711 okta-telus-sync okta-telus-sync' packaging/tmpfiles.conf \
    || { echo "tmpfiles does not create the state directory"; exit 1; }
  exposure=$(systemd-analyze security --offline=true "$tmp/okta-telus-sync.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  echo "systemd-analyze security --offline exposure: ${exposure:-unknown}"
  if [ -n "$exposure" ] && awk "BEGIN { exit !($exposure > 1.4) }"; then
    echo "exposure $exposure is over 1.4"; exit 1
  fi
  echo "unit ok"
  # The template unit: one daemon per tenant, each its own user, state and credentials.
  sed "s|/usr/bin/okta-telus-sync|$PWD/target/release/okta-telus-sync|g" 'packaging/okta-telus-sync@.service' > "$tmp/okta-telus-sync@.service"
  systemd-analyze verify "$tmp/okta-telus-sync@acme.service"
  for line in 'User=okta-telus-sync-%i' 'StateDirectory=okta-telus-sync/%i' 'StateDirectoryMode=0700' \
      'LoadCredential=okta-telus-sync:/etc/okta-telus-sync/tenants/%i/credentials' \
      'ExecStart=/usr/bin/okta-telus-sync --config /etc/okta-telus-sync/tenants/%i/sync.toml run' \
      'RestartPreventExitStatus=2' 'PrivateIPC=true' 'SystemCallFilter=@system-service'; do
    grep -qF "$line" 'packaging/okta-telus-sync@.service' || { echo "template unit lacks $line"; exit 1; }
  done
  # No tenant reads the plain unit's credentials (systemd loads a directory recursively).
  if grep -q '/run/credentials/okta-telus-sync.service\|LoadCredential=.*:/etc/okta-telus-sync/credentials' 'packaging/okta-telus-sync@.service'; then
    echo "the template unit reaches the plain unit's credentials"; exit 1
  fi
  exposure=$(systemd-analyze security --offline=true "$tmp/okta-telus-sync@acme.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  echo "template unit exposure: ${exposure:-unknown}"
  if [ -z "$exposure" ] || awk "BEGIN { exit !($exposure > 1.4) }"; then
    echo "template exposure ${exposure:-unknown} is over 1.4"; exit 1
  fi
  echo "template unit ok"
else
  echo "systemd-analyze not found: unit not verified"
fi
# The alert rules and their unit tests (promtool, from Debian's `prometheus` package).
if command -v promtool >/dev/null; then
  promtool check rules packaging/prometheus/okta-telus-sync.rules.yml
  promtool test rules packaging/prometheus/okta-telus-sync.rules.test.yml
  echo "alert rules ok"
else
  echo "promtool not found (apt-get install prometheus): alert rules not tested"; exit 1
fi
# Completions and the man page, generated from the CLI itself, for the package.
cargo build --release --locked
target/release/okta-telus-sync assets target/assets
cargo deb --locked
deb=$(ls -t target/debian/okta-telus-sync_*.deb | head -n 1)
contents=$(dpkg-deb --contents "$deb")
printf '%s\n' "$contents"
for f in ./usr/bin/okta-telus-sync ./lib/systemd/system/okta-telus-sync.service ./lib/systemd/system/okta-telus-sync@.service ./etc/okta-telus-sync/sync.toml ./usr/lib/sysusers.d/okta-telus-sync.conf ./usr/lib/tmpfiles.d/okta-telus-sync.conf \
    ./usr/share/bash-completion/completions/okta-telus-sync ./usr/share/zsh/vendor-completions/_okta-telus-sync \
    ./usr/share/fish/vendor_completions.d/okta-telus-sync.fish ./usr/share/man/man1/okta-telus-sync.1.gz \
    ./usr/share/okta-telus-sync/okta-telus-sync.rules.yml ./usr/share/okta-telus-sync/okta-telus-sync.json; do
  printf '%s\n' "$contents" | grep -q " $f\$" || { echo "missing in the package: $f"; exit 1; }
done
echo "package ok: $deb"
