#!/usr/bin/env bash
# The demo: local Mosquitto and InfluxDB, and a simulated Raspberry Pi agent counting two
# library doors and a study room (real agent code, gpiozero MockFactory pins driven by
# simulated visitors in real time). Shows every MQTT message; Ctrl-C stops what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/dev/setup.sh
deploy/dev/services.sh start

demo=var/demo
mkdir -p "$demo"
cat > "$demo/edge.toml" <<TOML
site = "iso-omena"
agent = "demo-pi"
state_dir = "$PWD/$demo/state"

[mqtt]
host = "127.0.0.1"
port = 18830

[publish]
health_interval_s = 30

[[doors]]
id = "library-main"
outer_pin = 17
inner_pin = 27

[[doors]]
id = "library-mall"
outer_pin = 22
inner_pin = 23

[[presence]]
id = "study-room-2"
pin = 24
hold_s = 10
TOML
if [ ! -f "$demo/trace.csv" ]; then
  .venv/bin/footfall-edge simulate --doors library-main,library-mall --minutes 60 \
    --profile tailgating --seed 1 -o "$demo/trace.csv" > "$demo/truth.json"
fi

.venv/bin/footfall-edge run --config "$demo/edge.toml" --mock-trace "$demo/trace.csv" \
  2> "$demo/agent.log" &
agent=$!
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping the agent (pid $agent) and the local services"
  kill -TERM "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
  deploy/dev/services.sh stop
}
trap cleanup INT TERM EXIT

cat <<TEXT

demo: a simulated agent 'demo-pi' is counting doors library-main and library-mall.
      The MQTT messages follow (crossings as visitors pass, health every 30 s).
      Broker: 127.0.0.1:18830, agent log: $demo/agent.log. Ctrl-C stops everything.

TEXT
mosquitto_sub -h 127.0.0.1 -p 18830 -v -t 'footfall/v1/#' &
sub=$!
wait "$agent" || true
kill "$sub" 2>/dev/null || true
