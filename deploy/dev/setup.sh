#!/usr/bin/env bash
# Set up a development machine (Debian/Ubuntu): the services the tests and the demo run
# for real (Mosquitto, InfluxDB 1.x) and a virtual environment with every extra.
# Idempotent: a second run only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The web pages are tested in Debian's headless Chromium, driven by Playwright (no browser
# download: Playwright is pointed at /usr/bin/chromium).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The deployment tests: certificates (make-certs), systemd units (systemd-analyze verify)
# and the broker ACL from outside (mosquitto_sub). In CI (CI=true) a test that finds a
# tool missing fails rather than skips (tests/support/ci_skips.py).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The Debian packages start system services where an init system runs them; this project
# starts its own instances on loopback, so nothing else is needed here.

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.footfall-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project with every extra into .venv"
  mkdir -p var
  if ! { .venv/bin/python -m pip install -q --upgrade pip &&
         .venv/bin/python -m pip install -q -e '.[all]'; } > var/setup-pip.log 2>&1; then
    cat var/setup-pip.log
    echo "setup: pip install failed (log above, also in var/setup-pip.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
echo "setup: ready (.venv, mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'), $(influxd version 2>/dev/null | awk '{print $1, $2}'))"
