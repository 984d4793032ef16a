# Shortcuts for the scripts (which work without make, on a fresh Debian bookworm as root).
.PHONY: run test lint

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check ygg tests bench contrib twisted
	.venv/bin/ruff format --check ygg tests bench contrib twisted
