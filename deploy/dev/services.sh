#!/usr/bin/env bash
# Local Mosquitto (127.0.0.1:18830) and InfluxDB 1.x (127.0.0.1:18086) for the demo and
# for trying things by hand, run as the current user with their data under var/services.
# Usage: deploy/dev/services.sh start|stop|status   (installs what is missing first)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "${1:-}" = "start" ] && deploy/dev/setup.sh >/dev/null
exec .venv/bin/python -m footfall_sim.localservices "$@"
