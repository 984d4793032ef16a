#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run a node with a fresh identity, like `yggdrasil -autoconf`.
# Extra arguments go to `ygg run`, e.g. `scripts/run.sh --config /etc/yggdrasil/yggdrasil.conf`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
    set -- --autoconf
fi
exec .venv/bin/ygg run "$@"
