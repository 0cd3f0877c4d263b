"""deploy/edge/install.sh on a "Pi" that is a folder: the script is sourced (which defines
its functions without running them), its paths point into the folder, and the steps a
test machine cannot or should not take are replaced: apt-get, useradd and pip (this
checkout's .venv is the agent's virtualenv), systemctl (recorded, not run; systemd is
taken to be running) and the owners of files (any user may run the tests). Everything
else is the script's own code: the option checks, the site file checks, the rendered
edge.toml, the files' modes and `footfall-edge check` against a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "edge" / "install.sh"

_HARNESS = r"""
ROOT=$1; shift
source "$INSTALL_SH"
PREFIX=$ROOT/opt/footfall-edge
VENV=$AGENT_VENV
CONF_DIR=$ROOT/etc/footfall
CONF=$CONF_DIR/edge.toml
ENV_FILE=$CONF_DIR/edge.env
STATE_DIR=$ROOT/var/lib/footfall-edge
UNIT_DEST=$ROOT/etc/systemd/system/footfall-edge.service
SVC_USER=$(id -un)
mkdir -p "$ROOT/etc/systemd/system"
is_root() { return 0; }
install_apt_packages() { log "apt: skipped (test)"; }
create_user() { mkdir -p "$STATE_DIR"; }
install_package() { log "pip: skipped (test)"; }
systemd_running() { return 0; }
systemctl() { printf '%s\n' "$*" >>"$ROOT/systemctl.log"; }
runuser() { shift 3; "$@"; }
chown() { :; }
install() {
    local args=()
    while (($#)); do
        case $1 in
            -o | -g) shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    command install "${args[@]}"
}
main "$@"
"""


class FakePi:
    """A folder standing for the Pi's file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def conf_dir(self) -> Path:
        return self.root / "etc" / "footfall"

    @property
    def conf(self) -> Path:
        return self.conf_dir / "edge.toml"

    @property
    def env_file(self) -> Path:
        return self.conf_dir / "edge.env"

    def install(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "INSTALL_SH": str(INSTALL),
            "AGENT_VENV": str(Path(sys.executable).parent.parent),
        }
        env = {k: v for k, v in env.items() if not k.startswith("FOOTFALL_")}
        return subprocess.run(
            ["bash", "-c", _HARNESS, "install.sh", str(self.root), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def systemctl(self) -> list[str]:
        """The systemctl commands the script ran, in order."""
        log = self.root / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []

    def files(self) -> list[str]:
        """Every file under the root (relative), sorted."""
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and p.name != "systemctl.log"
        )
