# Installs and exports the programs curfew's tests drive for real. Sourced by tests/run and
# tests/faked-hours from the repository root; works on a fresh machine.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/curfew-target}"
export CARGO_TERM_COLOR=never

# Installs Debian packages with apt-get (through sudo when not root).
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "installing: $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# Programs the tests drive for real, from Debian's packages: Prometheus and promtool for the
# metrics and dashboards tests, headless Chromium for the status page test, zic (libc-bin)
# for the zone database test, openssl for the certificates of the HTTPS tests, curl for
# `tests/feature-sets`.
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v zic >/dev/null 2>&1 || [ -x /usr/sbin/zic ] || missing+=(libc-bin)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi
export CURFEW_PROMETHEUS="${CURFEW_PROMETHEUS:-$(command -v prometheus)}"
export CURFEW_PROMTOOL="${CURFEW_PROMTOOL:-$(command -v promtool)}"
export CURFEW_CHROMIUM="${CURFEW_CHROMIUM:-/usr/bin/chromium}"
export CURFEW_ZIC="${CURFEW_ZIC:-$(command -v zic || echo /usr/sbin/zic)}"

# moto_server (PyPI moto[server]) for the AWS tests, schemathesis for the API fuzz test and
# kubernetes-validate for the manifests test, in a virtualenv outside the repository.
venv="${CURFEW_VENV:-$HOME/.cache/curfew-venv}"
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/schemathesis" ] \
    || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "installing moto[server], schemathesis and kubernetes-validate into $venv"
    if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv"; then
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q "moto[server]" schemathesis "kubernetes-validate>=1.33"
fi
export CURFEW_MOTO_SERVER="$venv/bin/moto_server"
export CURFEW_SCHEMATHESIS="${CURFEW_SCHEMATHESIS:-$venv/bin/schemathesis}"
export CURFEW_KUBERNETES_VALIDATE="${CURFEW_KUBERNETES_VALIDATE:-$venv/bin/kubernetes-validate}"

# cargo-nextest runs the tests: each in a process of its own, so a test may set process-wide
# state (the AWS environment) before it starts a thread.
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi
