# Shared by scripts/start and scripts/test: system packages and the virtualenv.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRMAIL_VENV:-$ROOT/.venv}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_need PKG...: install the Debian packages that are not installed yet.
apt_need() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# venv_install EXTRAS: create the virtualenv and install crmail into it.
venv_install() {
  local spec="$ROOT"
  [ -n "${1:-}" ] && spec="$ROOT[$1]"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    python3 -m venv "$VENV"
  fi
  echo "==> installing crmail${1:+ with $1 extras} into $VENV"
  local log="$VENV/pip-install.log"
  # The ml extra pins torch: installed on its own first, so that pip keeps that build
  # (the CPU wheel, where pip's configuration offers one locally) rather than resolving
  # another (a CUDA build of several GB).
  local torch=(true)
  if [[ ",${1:-}," == *",ml,"* ]]; then
    torch=("$VENV/bin/python" -m pip install --disable-pip-version-check "torch==2.13.0")
  fi
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
         "${torch[@]}" &&
         "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$spec"; } >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "Installing crmail's Python packages failed; the whole log is in $log." >&2
    return 1
  fi
  # Byte-compiled once here, as an install from a wheel would be: every crmail command
  # starts without compiling its modules again (where PYTHONDONTWRITEBYTECODE is set,
  # Python would otherwise compile them at each start, about 0.2 s).
  "$VENV/bin/python" -m compileall -q "$ROOT/crmail" >>"$log" 2>&1
}
