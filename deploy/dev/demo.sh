#!/usr/bin/env bash
# The demo: local Mosquitto and InfluxDB, the collector for the Iso Omena site, and a
# simulated Raspberry Pi agent counting two library doors and a study room (real agent
# code, gpiozero MockFactory pins driven by simulated visitors in real time). Shows the
# crossings and the live occupancy as they happen; Ctrl-C stops what it started.
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
wait_for_clock_s = 0  # a development machine's kernel may never report NTP sync

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
    --profile tailgating --p-out 0.35 --seed 1 -o "$demo/trace.csv" > "$demo/truth.json"
fi

FOOTFALL_MQTT__HOST=127.0.0.1 FOOTFALL_MQTT__PORT=18830 \
FOOTFALL_INFLUX__URL=http://127.0.0.1:18086 FOOTFALL_HTTP__PORT=18108 \
  .venv/bin/footfall-collector run --site deploy/sites/iso-omena.yaml 2> "$demo/collector.log" &
collector=$!
.venv/bin/footfall-edge run --config "$demo/edge.toml" --mock-trace "$demo/trace.csv" \
  2> "$demo/agent.log" &
agent=$!
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping the agent (pid $agent), the collector (pid $collector) and the local services"
  kill -TERM "$agent" "$collector" 2>/dev/null || true
  wait "$agent" "$collector" 2>/dev/null || true
  deploy/dev/services.sh stop
}
trap cleanup INT TERM EXIT

cat <<TEXT

demo: a simulated agent 'demo-pi' counts visitors at library-main and library-mall;
      the collector writes to InfluxDB and keeps each zone's occupancy.
      Crossings and occupancy follow as they happen.
      MQTT      127.0.0.1:18830   (mosquitto_sub -p 18830 -v -t 'footfall/v1/#')
      InfluxDB  http://127.0.0.1:18086, database footfall
      collector http://127.0.0.1:18108/healthz  /metrics  /occupancy
      logs      $demo/agent.log, $demo/collector.log
      Ctrl-C stops everything.

TEXT
mosquitto_sub -h 127.0.0.1 -p 18830 -v -t 'footfall/v1/+/agent/+/crossing' \
  -t 'footfall/v1/+/zone/library/occupancy' -t 'footfall/v1/+/zone/centre/occupancy' &
sub=$!
wait "$agent" || true
kill "$sub" 2>/dev/null || true
