#!/usr/bin/env bash
# deploy/moonwatch.service: the directives the deployment relies on are
# there (ExecStart with the packaged config, the state directory, the
# hardening, the docker group), `systemd-analyze verify` accepts the unit
# without a single warning (skipped, with the reason, where
# systemd-analyze is missing), and deploy/moonwatch.yaml, the config it
# starts with, loads. Arguments: the built moonwatch binary, the source
# directory.

# ok always succeeds, so `test && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail
mw=$1
src=$2
unit=$src/deploy/moonwatch.service
# shellcheck source-path=SCRIPTDIR source=lib/tally.sh
. "$(dirname "$0")/lib/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each directive as KEY=VALUE, exactly, in the [Service] section.
service=$(sed -n '/^\[Service\]/,/^\[/p' "$unit")
for want in "Type=simple" \
            "ExecStart=/usr/local/bin/moonwatch run -c /etc/moonwatch/moonwatch.yaml" \
            "Restart=on-failure" "StateDirectory=moonwatch" "SupplementaryGroups=docker" \
            "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "NoNewPrivileges=yes"; do
  grep -qxF "$want" <<<"$service" && ok || bad "$unit: no '$want' in [Service]"
done
ro=$(sed -n 's/^ReadOnlyPaths=//p' <<<"$service" | tr ' ' '\n')
for path in /proc /sys/fs/cgroup; do
  grep -qxF "$path" <<<"$ro" && ok || bad "$unit: $path not in ReadOnlyPaths="
done
grep -q '^WantedBy=multi-user.target$' "$unit" && ok || bad "$unit: not wanted by multi-user.target"

# The config the unit starts with: it loads, and state_dir is the
# unit's StateDirectory=.
grep -qx 'state_dir: /var/lib/moonwatch' "$src/deploy/moonwatch.yaml" && ok \
  || bad "deploy/moonwatch.yaml: state_dir is not /var/lib/moonwatch"
"$mw" check system -c "$src/deploy/moonwatch.yaml" --log-level error >"$tmp/check.out" 2>&1 && ok \
  || bad "deploy/moonwatch.yaml does not load: $(head -5 "$tmp/check.out")"

# systemd's own reading of the unit. verify wants ExecStart's program to
# exist: the copy verified runs the built binary instead. Unknown keys
# and bad values are only warnings to systemd, so any line about the
# unit fails the test.
if command -v systemd-analyze >/dev/null; then
  sed "s|^ExecStart=/usr/local/bin/moonwatch |ExecStart=$(readlink -f "$mw") |" "$unit" \
    >"$tmp/moonwatch.service"
  if systemd-analyze verify "$tmp/moonwatch.service" >"$tmp/verify.out" 2>&1; then ok; else
    bad "systemd-analyze verify failed: $(cat "$tmp/verify.out")"
  fi
  if grep -q 'moonwatch\.service' "$tmp/verify.out"; then
    bad "systemd-analyze verify warns: $(cat "$tmp/verify.out")"
  else ok; fi
else
  echo "SKIP: systemd-analyze verify: systemd-analyze is not installed (the systemd package)"
fi

tally
