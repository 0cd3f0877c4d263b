#!/usr/bin/env bash
# The demo: the whole system on one machine for the Iso Omena Service Centre. A local
# Mosquitto and InfluxDB (installed if missing), four weeks of simulated history, the
# collector, the web board, the alerts service (its e-mails go to a local mail catcher),
# and one simulated Raspberry Pi per door (the real agent code on gpiozero mock pins,
# driven by simulated visitors in real time). Ctrl-C stops what it started.
#
# Opening hours at any hour: every part runs on the demo's copy of the site,
# var/demo/site/SITE.yaml (sim/footfall_sim/demosite.py), the same building in a time
# zone where it is now well inside opening hours (its own when it is open), its week
# turned by whole days when today would be closed (a Sunday). The rules file beside the
# site is copied unchanged (its hours are site-local). docs/simulator.md, "The demo".
#
# Idempotent: a second run reuses the virtual environment, the services' data, the copy
# while it is still open for an hour or more, the history already written today and the
# agents' outboxes (their epochs and sequence numbers carry on). A new copy (another
# clock) deletes the site's points from the local InfluxDB and writes the history again.
# Settings, all optional:
#   FOOTFALL_DEMO_SITE            site file (deploy/sites/iso-omena.yaml)
#   FOOTFALL_DEMO_BACKFILL_DAYS   days of history written before the live part (28; 0: none)
#   FOOTFALL_DEMO_VISITS          mean visits a day (default: the site's usual crowd, 3,600
#                                 at Iso Omena; more fills small units past capacity)
#   FOOTFALL_DEMO_MQTT_PORT, _INFLUX_PORT, _COLLECTOR_PORT, _WEB_PORT, _ALERTS_PORT,
#   _SMTP_PORT, _WEBHOOK_PORT     (18830, 18086, 18108, 8080, 18110, 18025, 18026)
set -euo pipefail
cd "$(dirname "$0")/../.."

site=${FOOTFALL_DEMO_SITE:-deploy/sites/iso-omena.yaml}
backfill_days=${FOOTFALL_DEMO_BACKFILL_DAYS:-28}
visits=${FOOTFALL_DEMO_VISITS:-}
mqtt_port=${FOOTFALL_DEMO_MQTT_PORT:-18830}
influx_port=${FOOTFALL_DEMO_INFLUX_PORT:-18086}
collector_port=${FOOTFALL_DEMO_COLLECTOR_PORT:-18108}
web_port=${FOOTFALL_DEMO_WEB_PORT:-8080}
alerts_port=${FOOTFALL_DEMO_ALERTS_PORT:-18110}
smtp_port=${FOOTFALL_DEMO_SMTP_PORT:-18025}
webhook_port=${FOOTFALL_DEMO_WEBHOOK_PORT:-18026}
demo=var/demo
py=.venv/bin

say() { printf 'demo: %s\n' "$*"; }

if [ -n "$visits" ] && ! [[ "$visits" =~ ^[0-9]+(\.[0-9]+)?$ && "$visits" =~ [1-9] ]]; then
  say "FOOTFALL_DEMO_VISITS must be a number of visits a day above 0 (e.g. 5000), not" \
    "'$visits'; unset it for the site's usual crowd" >&2
  exit 2
fi
if [[ ! "$backfill_days" =~ ^[0-9]+$ ]]; then
  say "FOOTFALL_DEMO_BACKFILL_DAYS must be a whole number of days (0: none), not" \
    "'$backfill_days'" >&2
  exit 2
fi

say "1/5 setting up (installs Mosquitto, InfluxDB and the Python environment if missing)"
deploy/dev/setup.sh

services=(--mqtt-port "$mqtt_port" --influx-port "$influx_port")
started_services=0
if ! deploy/dev/services.sh status "${services[@]}" >/dev/null 2>&1; then
  started_services=1
fi
say "2/5 local services"
deploy/dev/services.sh start "${services[@]}"

export FOOTFALL_MQTT__HOST=127.0.0.1 FOOTFALL_MQTT__PORT=$mqtt_port
export FOOTFALL_INFLUX__URL=http://127.0.0.1:$influx_port FOOTFALL_INFLUX__DATABASE=footfall
mkdir -p "$demo"
$py/footfall-collector check-site "$site"  # a bad site file stops here with file:line: reason
site_id=$($py/python -c 'import sys; from footfall_contract.site import load_site; print(load_site(sys.argv[1]).site)' "$site")

pids=()
viewer=""
cleanup() {
  trap - INT TERM EXIT
  echo
  # The occupancy viewer holds nothing, and mosquitto_sub's own signal handler can hang
  # now and then (it disconnects from inside the handler): it goes first, for good.
  [ -n "$viewer" ] && { kill -KILL "$viewer" 2>/dev/null || true; }
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping the simulated agents, the collector, the web board and the alerts (pids ${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      alive=()
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
      [ ${#alive[@]} -eq 0 ] && break
      sleep 0.2
    done
    for pid in "${alive[@]}"; do
      # Safe: the agents' outboxes and the collector's ack-after-write lose nothing. Its
      # threads' stacks go to its log first (SIGUSR1), to see why it hung.
      say "pid $pid did not stop within 20 s: killed (its stacks are in its log)"
      kill -USR1 "$pid" 2>/dev/null || true
      sleep 0.5
      kill -KILL "$pid" 2>/dev/null || true
    done
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if [ "$started_services" = 1 ]; then
    deploy/dev/services.sh stop "${services[@]}"
  else
    say "the local services were running before the demo: left running"
  fi
}
trap cleanup INT TERM EXIT

# The demo's copy of the site, in a time zone where it is open now (kept while it is).
clock=$($py/python -m footfall_sim.demosite --site "$site" --out "$demo/site" --forget-data)
read -r copy_state local_day <<< "${clock%%$'\n'*}"
demo_site="$demo/site/$(basename "$site")"
say "${clock#*$'\n'}"
if [ "$copy_state" = new ]; then
  # Its history was written on another clock: deleted (--forget-data), written again.
  rm -f "$demo"/backfill-*
fi

marker="$demo/backfill-$site_id-$local_day-$backfill_days"
if [ "$backfill_days" -gt 0 ] && [ ! -f "$marker" ]; then
  say "3/5 writing $backfill_days days of simulated history into InfluxDB (about a second a day)"
  $py/footfall-sim --site "$demo_site" --backfill "$backfill_days" > "$demo/backfill.json"
  touch "$marker"
else
  say "3/5 history: already written today (or FOOTFALL_DEMO_BACKFILL_DAYS=0)"
fi

say "4/5 starting the collector, the web board and the alerts service"
FOOTFALL_HTTP__PORT=$collector_port \
  $py/footfall-collector run --site "$demo_site" 2>> "$demo/collector.log" &
pids+=($!)
# The board's Acknowledge and Silence go to the alerts service (both on loopback, where
# its API needs no token: docs/alerts.md, "Access").
FOOTFALL_HTTP__PORT=$web_port FOOTFALL_ALERTS__URL="http://127.0.0.1:$alerts_port" \
  $py/footfall-web run --site "$demo_site" >> "$demo/web.log" 2>&1 &
pids+=($!)
# Stand-ins for the mail server and Teams: what the alerts send lands in alerts-sent.log.
$py/python deploy/dev/catcher.py --smtp-port "$smtp_port" --http-port "$webhook_port" \
  >> "$demo/alerts-sent.log" 2>&1 &
pids+=($!)
FOOTFALL_HTTP__PORT=$alerts_port FOOTFALL_STATE_DIR="$PWD/$demo/alerts" \
FOOTFALL_BOARD_URL="http://127.0.0.1:$web_port/" \
FOOTFALL_SMTP__HOST=127.0.0.1 FOOTFALL_SMTP__PORT=$smtp_port FOOTFALL_SMTP__SECURITY=none \
FOOTFALL_ALERTS_TEAMS_URL="http://127.0.0.1:$webhook_port/teams" \
  $py/footfall-alerts run --site "$demo_site" 2>> "$demo/alerts.log" &
pids+=($!)

sim_args=(--mode realtime --hours 24 --state-dir "$demo/agents")
if [ -n "$visits" ]; then
  sim_args+=(--visits "$visits")
fi
say "5/5 starting one simulated Raspberry Pi per door"
$py/footfall-sim --site "$demo_site" "${sim_args[@]}" > "$demo/sim.json" 2>> "$demo/sim.log" &
sim=$!
pids+=("$sim")

cat <<TEXT

demo: running. Site $site_id, on its copy $demo_site (above): visitors walk through
      every door, the agents count them and publish to MQTT, the collector writes
      InfluxDB and each zone's occupancy.
      live board http://127.0.0.1:$web_port/   (Acknowledge and Silence reach the alerts)
      library    http://127.0.0.1:$web_port/crowding/$site_id/library   (the public display)
      API        http://127.0.0.1:$web_port/openapi.json
      alerts     http://127.0.0.1:$alerts_port/api/v1/alerts   what they send: $demo/alerts-sent.log
      collector  http://127.0.0.1:$collector_port/occupancy   /healthz   /metrics
      MQTT       127.0.0.1:$mqtt_port    mosquitto_sub -p $mqtt_port -v -t 'footfall/v1/#'
      InfluxDB   http://127.0.0.1:$influx_port, database footfall (InfluxQL)
      logs       $demo/collector.log, web.log, alerts.log, sim.log
      Grafana    not part of the demo: dashboards/grafana/ is provisioned by
                 deploy/server/docker-compose.yml (docs/dashboards.md)
      Ctrl-C stops everything the demo started.

demo: the library's occupancy as it changes:
TEXT
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -F '%I  %t  %p' \
  -t "footfall/v1/$site_id/zone/library/occupancy" &
viewer=$!
wait "$sim" || true
