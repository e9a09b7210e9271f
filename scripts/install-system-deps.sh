#!/usr/bin/env bash
# System packages only the tests need besides the Python venv (Debian/Ubuntu, apt only); `make test`
# runs this, `make demo` does not (the platform itself runs from wheels in .venv).
#
#   docker-compose   a compose client: tests/compose/ validates docker-compose.yml with its `config`
#                    command, which needs no Docker engine. Skipped when `docker compose` (v2) works.
#   chromium,        the headless browser and its WebDriver for the dashboard's browser test
#   chromium-driver  (tests/dashboard/); test tools' own browser downloads do not work offline.
#
# Idempotent: nothing happens when every package is installed already. Runs apt-get directly as root,
# through sudo when it needs no password (never a prompt); otherwise it fails with one line naming the
# missing packages and the command to run.
#
#     bash scripts/install-system-deps.sh
set -euo pipefail

PACKAGES="docker-compose chromium chromium-driver"

is_installed() {
    dpkg-query --show --showformat='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

satisfied_otherwise() {
    case "$1" in
        # The compose v2 plugin validates the file as well as Debian's client does.
        docker-compose) docker compose version >/dev/null 2>&1 ;;
        *) return 1 ;;
    esac
}

missing=()
for package in $PACKAGES; do
    if ! is_installed "$package" && ! satisfied_otherwise "$package"; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "System packages present: $PACKAGES"
    exit 0
fi

install_command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need system packages missing here: ${missing[*]}; without apt-get" \
        "(Debian/Ubuntu), install them with your system's package manager" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: the tests need system packages missing here: ${missing[*]}; as root run:" \
        "$install_command" >&2
    exit 1
fi

echo "Installing system packages: ${missing[*]}"
if ! { ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update &&
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"; }; then
    echo "error: apt-get could not install ${missing[*]} (its output is above); fix that, then run:" \
        "$install_command" >&2
    exit 1
fi
