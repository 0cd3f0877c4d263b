#!/usr/bin/env bash
# Install or upgrade the footfall edge agent on a Raspberry Pi (Raspberry Pi OS Bookworm).
# Run as root from a checkout of the repository:
#   sudo deploy/edge/install.sh [--site S] [--agent A] [--broker HOST] [--dry-run]
# Safe to run again: it upgrades the package and restarts the service, and never
# overwrites /etc/footfall/edge.toml or /etc/footfall/edge.env.
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
APT_PACKAGES=(python3-venv python3-lgpio)
ID_RE='^[a-z0-9][a-z0-9-]*$'      # footfall_contract.topics.ID_PATTERN
HOST_RE='^[A-Za-z0-9._:-]+$'

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
EXAMPLE=$SCRIPT_DIR/edge.example.toml

SITE=""
AGENT=""
BROKER=""
DRY_RUN=0
CHECK_ONLY=0
WORK=""

usage() {
    cat <<EOF
Usage: sudo $0 [options]

Installs or upgrades the footfall edge agent from this checkout ($REPO):
apt packages (${APT_PACKAGES[*]}), the system user '$SVC_USER' (group '$GPIO_GROUP'),
the virtualenv $VENV, the configuration $CONF and $ENV_FILE
(only when missing), and the systemd service $UNIT (enabled and (re)started).
Finally it runs 'footfall-edge check' as '$SVC_USER'.

Options:
  --site S       site id for a new $CONF (e.g. iso-omena)
  --agent A      agent id (and MQTT username) for a new $CONF (e.g. library-pi-1)
  --broker HOST  MQTT broker host name or address for a new $CONF
  --check        only run 'footfall-edge check' as the service would (user $SVC_USER,
                 $ENV_FILE loaded), e.g. after editing the configuration
  --dry-run      print the commands that would change the system; change nothing
  -h, --help     show this help

--site, --agent and --broker only apply when $CONF does not exist yet;
an existing configuration is never overwritten.
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
            --site | --agent | --broker)
                (($# >= 2)) || die "$1 needs a value (see --help)"
                case $1 in
                    --site) SITE=$2 ;;
                    --agent) AGENT=$2 ;;
                    --broker) BROKER=$2 ;;
                esac
                shift 2
                ;;
            --site=*) SITE=${1#*=}; shift ;;
            --agent=*) AGENT=${1#*=}; shift ;;
            --broker=*) BROKER=${1#*=}; shift ;;
            --dry-run) DRY_RUN=1; shift ;;
            --check) CHECK_ONLY=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown argument: $1 (see --help)" ;;
        esac
    done
    if [[ -n $SITE && ! $SITE =~ $ID_RE ]]; then
        die "--site '$SITE': use lowercase letters, digits and '-'"
    fi
    if [[ -n $AGENT && ! $AGENT =~ $ID_RE ]]; then
        die "--agent '$AGENT': use lowercase letters, digits and '-'"
    fi
    if [[ -n $BROKER && ! $BROKER =~ $HOST_RE ]]; then
        die "--broker '$BROKER': expected a host name or IP address"
    fi
    if (( ${#SITE} > 64 || ${#AGENT} > 64 )); then
        die "site and agent ids are at most 64 characters"
    fi
}

preflight() {
    if ((DRY_RUN)); then
        log "dry run: printing the commands that would change the system"
    elif ((EUID != 0)); then
        die "run as root: sudo $0 $*"
    fi
    [[ -f $REPO/pyproject.toml && -d $REPO/edge/footfall_edge ]] \
        || die "$REPO does not look like a footfall checkout"
    for f in "$EXAMPLE" "$SCRIPT_DIR/$UNIT"; do
        [[ -f $f ]] || die "missing $f"
    done
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

# The example configuration with --site/--agent/--broker substituted, on stdout.
render_config() {
    local args=()
    if [[ -n $SITE ]]; then
        args+=(-e "s|^site = \".*\"|site = \"$SITE\"|")
    fi
    if [[ -n $AGENT ]]; then
        args+=(-e "s|^agent = \".*\"|agent = \"$AGENT\"|")
        args+=(-e "s|^username = \".*\"|username = \"$AGENT\"|")
    fi
    if [[ -n $BROKER ]]; then
        args+=(-e "s|^host = \".*\"|host = \"$BROKER\"|")
    fi
    sed "${args[@]}" -e '' "$EXAMPLE"
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
    if [[ -e $CONF ]]; then
        log "$CONF exists: left unchanged"
        if [[ -n $SITE || -n $AGENT || -n $BROKER ]]; then
            warn "--site/--agent/--broker ignored: edit $CONF by hand"
        fi
    else
        log "writing $CONF from $(basename "$EXAMPLE")"
        if ((DRY_RUN)); then
            printf '+ write %q (mode 0640, root:%s): %s with\n' "$CONF" "$SVC_USER" "$EXAMPLE"
            render_config | grep -E '^(site|agent|host|username) = ' | sed 's/^/|   /'
        else
            render_config | write_file 0640 root "$SVC_USER" "$CONF"
        fi
        if [[ -z $SITE || -z $AGENT || -z $BROKER ]]; then
            warn "$CONF keeps the example's site/agent/broker where not given: edit it"
        fi
    fi
    if [[ -e $ENV_FILE ]]; then
        log "$ENV_FILE exists: left unchanged"
    else
        log "writing $ENV_FILE (mode 600, root only)"
        write_file 0600 root root "$ENV_FILE" <<'EOF'
# Secrets for the footfall edge agent, loaded by footfall-edge.service (EnvironmentFile=).
# One KEY=value per line; put a value with special characters in single quotes.
# Any setting of edge.toml can be given here as FOOTFALL_<SECTION>__<KEY>.
#FOOTFALL_MQTT__PASSWORD='change-me'
EOF
    fi
}

install_service() {
    log "installing $UNIT_DEST"
    run install -m 0644 -o root -g root "$SCRIPT_DIR/$UNIT" "$UNIT_DEST"
    if ! ((DRY_RUN)) && [[ ! -d /run/systemd/system ]]; then
        warn "systemd is not running on this host: service not enabled or started"
        return
    fi
    run systemctl daemon-reload
    if ! ((DRY_RUN)) && systemctl is-active --quiet "$UNIT"; then
        run systemctl enable "$UNIT"
        log "restarting $UNIT (new version)"
        run systemctl restart "$UNIT"
    else
        run systemctl enable --now "$UNIT"
    fi
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

check_config() {
    log "footfall-edge check (as $SVC_USER)"
    local rc=0
    if ((DRY_RUN)); then
        run runuser -u "$SVC_USER" -- "$VENV/bin/footfall-edge" check --config "$CONF"
        return
    fi
    # As the service sees it: the service user, its working directory and edge.env,
    # whose values go through the environment (not the command line).
    (
        cd "$STATE_DIR"
        export_env_file "$ENV_FILE"
        exec runuser -u "$SVC_USER" -- "$VENV/bin/footfall-edge" check --config "$CONF"
    ) || rc=$?
    case $rc in
        0) ;;
        1) warn "the broker is not reachable or refused the login: see above" ;;
        *) warn "footfall-edge check failed (exit $rc): fix $CONF, then: sudo systemctl restart ${UNIT%.service}" ;;
    esac
    if [[ -e /dev/gpiochip0 ]] && ! runuser -u "$SVC_USER" -- test -r /dev/gpiochip0; then
        warn "$SVC_USER cannot open /dev/gpiochip0: the GPIO chips should be group $GPIO_GROUP, mode 660"
    fi
}

next_steps() {
    cat <<EOF

Next steps
  1. Edit $CONF: site, agent, [mqtt] host/username, the doors' and sensors' pins.
  2. Put the MQTT password into $ENV_FILE:  FOOTFALL_MQTT__PASSWORD='...'
  3. Check (as the service would run it, with $ENV_FILE), then restart:
       sudo $0 --check
       sudo systemctl restart ${UNIT%.service}
  4. Walk test: the service holds the GPIO lines, so stop it for the test,
     walk through each door both ways and watch the counts (Ctrl-C to stop):
       sudo systemctl stop ${UNIT%.service}
       cd $STATE_DIR && sudo -u $SVC_USER $VENV/bin/footfall-edge watch --config $CONF
       sudo systemctl start ${UNIT%.service}
  Logs:    journalctl -u ${UNIT%.service} -f
  Status:  systemctl status ${UNIT%.service}
  Upgrade: git pull in this checkout, then run this script again.
EOF
}

main() {
    parse_args "$@"
    preflight "$@"
    if ((CHECK_ONLY)); then
        check_config
        return
    fi
    install_apt_packages
    create_user
    install_package
    install_config
    install_service
    check_config
    next_steps
}

# Sourcing the script (for tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
