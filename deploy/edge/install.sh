#!/usr/bin/env bash
# Install or upgrade the footfall edge agent on a Raspberry Pi (Raspberry Pi OS Bookworm).
# Run as root from a checkout of the repository, with the folder add-agent made on the
# server and the doors this Pi serves:
#   sudo deploy/edge/install.sh --from /tmp/footfall-library-pi-1 --door library-main=17,27
# Every id is checked against the site file (deploy/sites/SITE.yaml) before anything is
# written, and the service starts only once 'footfall-edge check' passes. Safe to run
# again: without options it upgrades the package and restarts the service, and it never
# overwrites /etc/footfall/edge.toml or edge.env unless --reconfigure is given.
set -euo pipefail

PREFIX=/opt/footfall-edge
VENV=$PREFIX/venv
CONF_DIR=/etc/footfall
CONF=$CONF_DIR/edge.toml
ENV_FILE=$CONF_DIR/edge.env
STATE_DIR=/var/lib/footfall-edge
UNIT=footfall-edge.service
UNIT_DEST=/etc/systemd/system/$UNIT
SVC_USER=footfall
GPIO_GROUP=gpio
# python3-yaml: the site file is read to check the doors (the venv sees system packages).
APT_PACKAGES=(python3-venv python3-lgpio python3-yaml)
ID_RE='^[a-z0-9][a-z0-9-]*$'      # footfall_contract.topics.ID_PATTERN
HOST_RE='^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$'
DOOR_RE='^[a-z0-9][a-z0-9-]*=[A-Za-z0-9_]+,[A-Za-z0-9_]+(,invert)?$'
PRESENCE_RE='^[a-z0-9][a-z0-9-]*=[A-Za-z0-9_]+$'
# Broker users of the services (deploy/mosquitto/acl): no agent may take these names.
SERVICE_USERS=(collector dashboard alerts web)
TLS_PORT=8883      # the default, as in deploy/mosquitto/add-agent

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
EXAMPLE=$SCRIPT_DIR/edge.example.toml
SITES_DIR=$REPO/deploy/sites

SITE=""
AGENT=""
BROKER=""
PORT=""
TLS=""
CA_CERT=""
FROM=""
DOORS=()
PRESENCE=()
RECONFIGURE=0
DRY_RUN=0
CHECK_ONLY=0
START_ONLY=0
WRITE_CONF=0
SECRETS_FILE=""
WORK=""

usage() {
    cat <<EOF
Usage: sudo $0 --from DIR --door ID=OUTER,INNER [--door ...] [--presence ID=PIN ...]
       sudo $0 --site S --agent A --broker HOST[:PORT] --door ... [options]
       sudo $0                  (upgrade: keep the configuration)
       sudo $0 --check | --start

Installs or upgrades the footfall edge agent from this checkout ($REPO):
apt packages (${APT_PACKAGES[*]}), the system user '$SVC_USER' (group '$GPIO_GROUP'),
the virtualenv $VENV, the configuration $CONF,
$ENV_FILE (the broker password) and $CONF_DIR/ca.crt, and the systemd
service $UNIT. The service is enabled and (re)started only once
'footfall-edge check' passes as '$SVC_USER' (configuration, pins and broker login).

The configuration (a new $CONF):
  --from DIR          the agent's folder from deploy/mosquitto/add-agent on the server:
                      install.env (site, agent, broker host:port, TLS), edge.env (the
                      password) and ca.crt when made with --ca-cert
  --site S            the site id: deploy/sites/S.yaml must exist (see --sites-dir)
  --agent A           this Pi's agent id, also its MQTT username
  --broker HOST[:PORT]
                      the MQTT broker (port default $TLS_PORT)
  --tls, --no-tls     TLS on or off (default: on for port $TLS_PORT, off otherwise)
  --ca-cert FILE      the CA certificate the agent verifies the broker with (installed
                      as $CONF_DIR/ca.crt; without it: the system's CA store)
  --door ID=OUTER,INNER[,invert]
                      a door of the site this Pi serves and the BCM pins (or gpiozero
                      names) of its outer and inner beam; ',invert' when the beams are
                      mounted the other way round (repeatable)
  --presence ID=PIN   a presence sensor of the site on this Pi (repeatable)
  --sites-dir DIR     where the site files are (default: $SITES_DIR)
  --reconfigure       write a new configuration over an existing one (kept as
                      edge.toml.bak; edge.env and ca.crt are replaced when given)

Other:
  --check        only run 'footfall-edge check' as the service would (user $SVC_USER,
                 $ENV_FILE loaded)
  --start        run the check and, when it passes, enable and (re)start the service
                 (e.g. after editing $CONF or putting the password in place)
  --dry-run      print the commands that would change the system; change nothing
  -h, --help     show this help

An existing configuration is never overwritten without --reconfigure. Every id is
checked against the site file; the doors' pins against the agent's own loader.
EOF
}

log() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Run a command, or only print it (shell-quoted) with --dry-run.
run() {
    if ((DRY_RUN)); then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

cleanup() {
    if [[ -n $WORK && -d $WORK ]]; then
        rm -rf -- "$WORK"
    fi
}
trap cleanup EXIT

parse_args() {
    while (($#)); do
        case $1 in
            --site | --agent | --broker | --ca-cert | --from | --door | --presence | --sites-dir)
                (($# >= 2)) || die "$1 needs a value (see --help)"
                case $1 in
                    --site) SITE=$2 ;;
                    --agent) AGENT=$2 ;;
                    --broker) BROKER=$2 ;;
                    --ca-cert) CA_CERT=$2 ;;
                    --from) FROM=$2 ;;
                    --door) DOORS+=("$2") ;;
                    --presence) PRESENCE+=("$2") ;;
                    --sites-dir) SITES_DIR=$2 ;;
                esac
                shift 2
                ;;
            --*=*)
                local opt=${1%%=*} val=${1#*=}
                shift
                parse_args "$opt" "$val"
                ;;
            --tls) TLS=true; shift ;;
            --no-tls) TLS=false; shift ;;
            --reconfigure) RECONFIGURE=1; shift ;;
            --dry-run) DRY_RUN=1; shift ;;
            --check) CHECK_ONLY=1; shift ;;
            --start) START_ONLY=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown argument: $1 (see --help)" ;;
        esac
    done
}

# KEY=value lines of add-agent's install.env (no shell evaluation, known keys only).
read_install_env() {
    local file=$1 line key val
    while IFS= read -r line || [[ -n $line ]]; do
        [[ -z $line || $line == '#'* ]] && continue
        [[ $line == *=* ]] || die "$file: not KEY=value: $line"
        key=${line%%=*}
        val=${line#*=}
        case $key in
            SITE) merge_option --site "$val" SITE ;;
            AGENT) merge_option --agent "$val" AGENT ;;
            BROKER) merge_option --broker "$val" BROKER ;;
            TLS) merge_option --tls "$val" TLS ;;
            *) die "$file: unknown key $key" ;;
        esac
    done <"$file"
}

# merge_option OPTION VALUE VAR: take VALUE from install.env unless the command line
# gave another one.
merge_option() {
    local current=${!3}
    if [[ -n $current && $current != "$2" ]]; then
        die "$1 $current disagrees with $FROM/install.env ($2)"
    fi
    printf -v "$3" '%s' "$2"
}

load_from() {
    [[ -n $FROM ]] || return 0
    [[ -d $FROM ]] || die "--from $FROM: no such folder (the agent's folder from add-agent)"
    [[ -r $FROM/install.env ]] \
        || die "--from $FROM: no install.env in it (made by deploy/mosquitto/add-agent --site S --agent A)"
    read_install_env "$FROM/install.env"
    if [[ -r $FROM/edge.env ]]; then
        SECRETS_FILE=$FROM/edge.env
    fi
    if [[ -z $CA_CERT && -r $FROM/ca.crt ]]; then
        CA_CERT=$FROM/ca.crt
    fi
}

is_service_user() {
    local u
    for u in "${SERVICE_USERS[@]}"; do
        [[ $1 != "$u" ]] || return 0
    done
    return 1
}

# The site ids of the site files (SITE.yaml; SITE.alerts.yaml and the like are not sites).
known_sites() {
    local f names=""
    for f in "$SITES_DIR"/*.yaml; do
        [[ -f $f ]] || continue
        f=${f##*/}
        f=${f%.yaml}
        [[ $f == *.* ]] || names+="${names:+, }$f"
    done
    printf '%s' "${names:-none}"
}

# Decide whether a configuration is written, and check every option that can be checked
# before anything on the system changes (the doors against the site: render_config).
plan_config() {
    local given=0 spec
    if [[ -n $SITE || -n $AGENT || -n $BROKER || -n $TLS || -n $CA_CERT || -n $FROM ]] \
        || ((${#DOORS[@]} || ${#PRESENCE[@]})); then
        given=1
    fi
    load_from
    if [[ -e $CONF ]]; then
        if ((given && !RECONFIGURE)); then
            die "$CONF exists: add --reconfigure to replace it (the old one is kept as edge.toml.bak), or run without options to upgrade"
        fi
        ((given)) || return 0
    elif ((!given)); then
        die "no $CONF yet: give --from DIR (from add-agent) or --site, --agent and --broker, and the doors: --door ID=OUTER,INNER (see --help)"
    fi
    WRITE_CONF=1
    [[ -n $SITE ]] || die "--site is missing (or --from DIR with its install.env)"
    [[ -n $AGENT ]] || die "--agent is missing (or --from DIR with its install.env)"
    [[ -n $BROKER ]] || die "--broker is missing (or --from DIR with its install.env)"
    if [[ ! $SITE =~ $ID_RE ]] || ((${#SITE} > 64)); then
        die "--site '$SITE': use lowercase letters, digits and '-' (at most 64)"
    fi
    if [[ ! $AGENT =~ $ID_RE ]] || ((${#AGENT} > 64)); then
        die "--agent '$AGENT': use lowercase letters, digits and '-' (at most 64)"
    fi
    if is_service_user "$AGENT"; then
        die "--agent '$AGENT' is the broker user of a service, not an agent"
    fi
    [[ -f $SITES_DIR/$SITE.yaml ]] \
        || die "--site '$SITE': no site file $SITES_DIR/$SITE.yaml (sites: $(known_sites))"
    local host=$BROKER port=""
    if [[ $BROKER =~ ^(.*):([0-9]+)$ && ${BASH_REMATCH[1]} != *:* ]]; then
        host=${BASH_REMATCH[1]}
        port=${BASH_REMATCH[2]}
    elif [[ $BROKER =~ ^(\[.*\]):([0-9]+)$ ]]; then
        host=${BASH_REMATCH[1]}
        port=${BASH_REMATCH[2]}
    fi
    [[ $host =~ $HOST_RE ]] || die "--broker '$BROKER': expected HOST or HOST:PORT"
    if [[ -n $port ]] && ((10#$port < 1 || 10#$port > 65535)); then
        die "--broker '$BROKER': the port must be 1..65535"
    fi
    PORT=${port:-$TLS_PORT}
    if [[ -z $TLS ]]; then
        if ((PORT == TLS_PORT)); then TLS=true; else TLS=false; fi
    fi
    [[ $TLS == true || $TLS == false ]] || die "TLS '$TLS': true or false"
    BROKER=$host
    if [[ -n $CA_CERT ]]; then
        [[ $TLS == true ]] || die "--ca-cert needs TLS (--tls, or the broker's port $TLS_PORT)"
        [[ -r $CA_CERT ]] || die "--ca-cert $CA_CERT: not readable"
        grep -q 'BEGIN CERTIFICATE' "$CA_CERT" || die "--ca-cert $CA_CERT: not a PEM certificate"
    fi
    ((${#DOORS[@]} || ${#PRESENCE[@]})) \
        || die "give the doors this Pi serves: --door ID=OUTER,INNER (ids as in $SITES_DIR/$SITE.yaml), and --presence ID=PIN for presence sensors"
    for spec in "${DOORS[@]}"; do
        [[ $spec =~ $DOOR_RE ]] || die "--door '$spec': expected ID=OUTER_PIN,INNER_PIN[,invert] (library-main=17,27)"
    done
    for spec in "${PRESENCE[@]}"; do
        [[ $spec =~ $PRESENCE_RE ]] || die "--presence '$spec': expected ID=PIN (study-room-2=24)"
    done
}

is_root() {
    ((EUID == 0))
}

preflight() {
    if ((DRY_RUN)); then
        log "dry run: printing the commands that would change the system"
    elif ! is_root; then
        die "run as root: sudo $0 $*"
    fi
    [[ -f $REPO/pyproject.toml && -d $REPO/edge/footfall_edge ]] \
        || die "$REPO does not look like a footfall checkout"
    for f in "$EXAMPLE" "$SCRIPT_DIR/$UNIT"; do
        [[ -f $f ]] || die "missing $f"
    done
    [[ -d $SITES_DIR ]] || die "--sites-dir $SITES_DIR: no such folder"
}

install_apt_packages() {
    local missing=() available=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "apt packages present: ${APT_PACKAGES[*]}"
        return
    fi
    log "installing apt packages: ${missing[*]}"
    run apt-get update
    for pkg in "${missing[@]}"; do
        # python3-lgpio comes from the Raspberry Pi OS archive; a plain Debian test
        # host may not have it (gpiozero then has no hardware pin factory).
        if ((DRY_RUN)) || apt-cache show "$pkg" >/dev/null 2>&1; then
            available+=("$pkg")
        else
            warn "apt package $pkg is not available here: skipped (not a Raspberry Pi OS host?)"
        fi
    done
    if ((${#available[@]})); then
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${available[@]}"
    fi
}

create_user() {
    if ! getent group "$GPIO_GROUP" >/dev/null; then
        log "creating group $GPIO_GROUP (not a Raspberry Pi OS host?)"
        run groupadd --system "$GPIO_GROUP"
    fi
    if id -u "$SVC_USER" >/dev/null 2>&1; then
        log "user $SVC_USER exists"
    else
        log "creating system user $SVC_USER"
        run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "footfall edge agent" "$SVC_USER"
    fi
    if ! id -nG "$SVC_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$GPIO_GROUP"; then
        run usermod --append --groups "$GPIO_GROUP" "$SVC_USER"
    fi
    # The service's StateDirectory= creates it too; check and watch need it before.
    run install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$STATE_DIR"
}

install_package() {
    local venv_ok=0
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null \
        && grep -qx 'include-system-site-packages = true' "$VENV/pyvenv.cfg" 2>/dev/null; then
        venv_ok=1
    fi
    run install -d -m 0755 "$PREFIX"
    if ((venv_ok)); then
        log "virtualenv $VENV exists"
    else
        # --system-site-packages: the apt python3-lgpio must be importable in the venv.
        # --clear: a venv left by another Python version (or without that flag) is rebuilt.
        log "creating virtualenv $VENV"
        run python3 -m venv --clear --system-site-packages "$VENV"
    fi

    # Build from a root-owned copy, so that the build leaves no root-owned build/ or
    # *.egg-info in the (user's) checkout.
    log "installing footfall[edge] from $REPO"
    local src
    if ((DRY_RUN)); then
        src=/tmp/footfall-src.XXXXXX/src
        printf '+ tar -C %q --exclude=.git ... -cf - . | tar -C %q -xf -\n' "$REPO" "$src"
    else
        WORK=$(mktemp -d /tmp/footfall-src.XXXXXX)
        mkdir "$WORK/src"
        tar -C "$REPO" \
            --exclude=.git --exclude=.venv --exclude=venv --exclude=build --exclude=dist \
            --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
            --exclude=.hypothesis --exclude=.benchmarks --exclude=.mypy_cache \
            --exclude=.ruff_cache --exclude=node_modules \
            -cf - . | tar -C "$WORK/src" -xf -
        src=$WORK/src
    fi
    # A local directory is always rebuilt and reinstalled, so a second run upgrades.
    run "$VENV/bin/pip" install --disable-pip-version-check --upgrade "${src}[edge]"
    if ! ((DRY_RUN)) && ! "$VENV/bin/python" -c 'import lgpio' 2>/dev/null; then
        warn "lgpio is not importable in $VENV: no GPIO pin factory on this host"
    fi
}

# The configuration for these options on stdout: footfall_edge.install_config checks the
# site, agent, doors and sensors against the site file and the pins with the agent's
# own loader, and fails naming what is wrong.
render_config() {
    local args=(--example "$EXAMPLE" --sites-dir "$SITES_DIR" --site "$SITE" --agent "$AGENT"
        --broker "$BROKER:$PORT") spec
    if [[ $TLS == true ]]; then args+=(--tls); else args+=(--no-tls); fi
    [[ -z $CA_CERT ]] || args+=(--ca-certs "$CONF_DIR/ca.crt")
    for spec in "${DOORS[@]}"; do args+=(--door "$spec"); done
    for spec in "${PRESENCE[@]}"; do args+=(--presence "$spec"); done
    "$VENV/bin/python" -m footfall_edge.install_config "${args[@]}"
}

# write_file MODE OWNER GROUP DEST: stdin to DEST, atomically, with that mode and owner.
write_file() {
    local mode=$1 owner=$2 group=$3 dest=$4 tmp
    if ((DRY_RUN)); then
        printf '+ write %q (mode %s, %s:%s):\n' "$dest" "$mode" "$owner" "$group"
        sed 's/^/|   /'
        return
    fi
    tmp=$(mktemp "$dest.XXXXXX")   # created with mode 600
    cat >"$tmp"
    chown "$owner:$group" "$tmp"
    chmod "$mode" "$tmp"
    mv -f -- "$tmp" "$dest"
}

install_config() {
    # The directory is root's; the service user may read it but not change it.
    run install -d -m 0750 -o root -g "$SVC_USER" "$CONF_DIR"
    if ((!WRITE_CONF)); then
        log "$CONF exists: left unchanged"
    else
        log "writing $CONF: site $SITE, agent $AGENT, broker $BROKER:$PORT (tls = $TLS), doors: ${DOORS[*]:-none}, presence: ${PRESENCE[*]:-none}"
        if ((DRY_RUN)); then
            printf '+ %q -m footfall_edge.install_config ... > %q (mode 0640, root:%s)\n' \
                "$VENV/bin/python" "$CONF" "$SVC_USER"
        else
            local text
            text=$(render_config) || die "no configuration written: fix the options above and run again"
            if [[ -e $CONF ]]; then
                cp -p -- "$CONF" "$CONF.bak"
                log "the old configuration is in $CONF.bak"
            fi
            printf '%s\n' "$text" | write_file 0640 root "$SVC_USER" "$CONF"
        fi
    fi
    if [[ -n $CA_CERT ]] && ((WRITE_CONF)); then
        log "installing $CONF_DIR/ca.crt from $CA_CERT"
        run install -m 0644 -o root -g root "$CA_CERT" "$CONF_DIR/ca.crt"
    fi
    if [[ -n $SECRETS_FILE ]] && ((WRITE_CONF)); then
        log "installing $ENV_FILE from $SECRETS_FILE (mode 600, root only)"
        run install -m 0600 -o root -g root "$SECRETS_FILE" "$ENV_FILE"
    elif [[ -e $ENV_FILE ]]; then
        log "$ENV_FILE exists: left unchanged"
    else
        log "writing $ENV_FILE (mode 600, root only): put the broker password in it"
        write_file 0600 root root "$ENV_FILE" <<'EOF'
# Secrets for the footfall edge agent, loaded by footfall-edge.service (EnvironmentFile=).
# One KEY=value per line; put a value with special characters in single quotes.
# Any setting of edge.toml can be given here as FOOTFALL_<SECTION>__<KEY>.
#FOOTFALL_MQTT__PASSWORD='change-me'
EOF
    fi
}

# Overridden by the tests, which run without systemd.
systemd_running() {
    [[ -d /run/systemd/system ]]
}

install_service() {
    log "installing $UNIT_DEST"
    run install -m 0644 -o root -g root "$SCRIPT_DIR/$UNIT" "$UNIT_DEST"
    if ((DRY_RUN)) || systemd_running; then
        run systemctl daemon-reload
    fi
}

# Enable and (re)start the service, only once the check has passed: a new Pi never runs
# with a configuration the check refuses, and an upgrade whose check fails leaves the
# running agent as it is.
start_if_checked() {
    local rc=0
    check_config || rc=$?
    if ((rc != 0)); then
        warn "$UNIT not started: fix what the check says, then: sudo $0 --start"
        return "$rc"
    fi
    if ! ((DRY_RUN)) && ! systemd_running; then
        warn "systemd is not running on this host: $UNIT not enabled or started"
        return 0
    fi
    run systemctl enable "$UNIT"
    log "(re)starting $UNIT"
    run systemctl restart "$UNIT"
}

# Export the KEY=value lines of a systemd EnvironmentFile (no shell evaluation).
export_env_file() {
    local line key val
    [[ -r $1 ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line#"${line%%[![:space:]]*}"}
        [[ -z $line || $line == '#'* || $line == ';'* || $line != *=* ]] && continue
        key=${line%%=*}
        key=${key%"${key##*[![:space:]]}"}
        val=${line#*=}
        val=${val#"${val%%[![:space:]]*}"}
        if ((${#val} >= 2)) && [[ ($val == \"*\" || $val == \'*\') && ${val:0:1} == "${val: -1}" ]]; then
            val=${val:1:${#val}-2}
        fi
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && export "$key=$val"
    done <"$1"
}

# footfall-edge check as the service sees it: the service user, its working directory
# and edge.env, whose values go through the environment (not the command line). Returns
# its exit status: 0 all good, 1 broker unreachable or login refused, 2 configuration.
check_config() {
    log "footfall-edge check (as $SVC_USER)"
    local rc=0
    if ((DRY_RUN)); then
        run runuser -u "$SVC_USER" -- "$VENV/bin/footfall-edge" check --config "$CONF"
        return 0
    fi
    [[ -e $CONF ]] || die "no $CONF: install first (see --help)"
    (
        cd "$STATE_DIR"
        export_env_file "$ENV_FILE"
        runuser -u "$SVC_USER" -- "$VENV/bin/footfall-edge" check --config "$CONF"
    ) || rc=$?
    case $rc in
        0) ;;
        1) warn "the broker is not reachable or refused the login: see above ($CONF [mqtt], the password in $ENV_FILE)" ;;
        *) warn "footfall-edge check failed (exit $rc): fix $CONF" ;;
    esac
    if [[ -e /dev/gpiochip0 ]] && ! runuser -u "$SVC_USER" -- test -r /dev/gpiochip0; then
        warn "$SVC_USER cannot open /dev/gpiochip0: the GPIO chips should be group $GPIO_GROUP, mode 660"
    fi
    return "$rc"
}

next_steps() {
    local started=$1
    if ((started)); then
        cat <<EOF

The agent runs: site $(sed -n 's/^site = "\(.*\)"$/\1/p' "$CONF" 2>/dev/null), agent $(sed -n 's/^agent = "\(.*\)"$/\1/p' "$CONF" 2>/dev/null).
EOF
    else
        cat <<EOF

The agent is installed but NOT started. Fix what the check says above (the broker
password goes into $ENV_FILE as FOOTFALL_MQTT__PASSWORD='...'), then:
  sudo $0 --start
EOF
    fi
    cat <<EOF

Next steps
  Walk test: the service holds the GPIO lines, so stop it for the test,
  walk through each door both ways and watch the counts (Ctrl-C to stop):
       sudo systemctl stop ${UNIT%.service}
       cd $STATE_DIR && sudo -u $SVC_USER $VENV/bin/footfall-edge watch --config $CONF
       sudo systemctl start ${UNIT%.service}
  After editing $CONF:  sudo $0 --start
  Logs:    journalctl -u ${UNIT%.service} -f
  Status:  systemctl status ${UNIT%.service}
  Upgrade: git pull in this checkout, then run this script again (no options).
EOF
}

main() {
    parse_args "$@"
    preflight "$@"
    if ((CHECK_ONLY)); then
        check_config
        return
    fi
    if ((START_ONLY)); then
        start_if_checked
        return
    fi
    plan_config
    install_apt_packages
    create_user
    install_package
    install_config
    install_service
    local rc=0
    start_if_checked || rc=$?
    next_steps "$((rc == 0))"
    return "$rc"
}

# Sourcing the script (for tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
