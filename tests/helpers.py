"""Shared test helpers: where the test data lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


def load_json(relative: str) -> Any:
    return json.loads((DATA / relative).read_text())
