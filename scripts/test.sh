#!/usr/bin/env bash
# Set up everything the tests need (scripts/setup.sh --test) and run the whole suite:
# lint, unit and in-memory tests, and the interoperability tests against the real Go node
# (which must run here: YGG_REQUIRE_INTEROP=1 turns a missing requirement into a failure).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k config`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check ygg tests bench contrib twisted
export YGG_REQUIRE_INTEROP="${YGG_REQUIRE_INTEROP:-1}"
exec .venv/bin/python -m pytest -q "$@"
