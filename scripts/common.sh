# Helpers shared by the setup scripts (sourced, not run).

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${SAELAB_HOME:-$HOME/.cache/saelab}"
checksums="$here/checksums.sha256"

fail() { echo "setup: error: $*" >&2; exit 1; }
say() { echo "setup: $*" >&2; }

expected_sha() { awk -v f="$1" '$2 == f { print $1 }' "$checksums"; }
sha_of() { python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
PY
}
