"""What a check of ``ygg doctor`` returns: one line of the checklist."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
WARN = "warn"
FAIL = "fail"
#: Not checked: the setting is off, or there is nothing to check it with.
SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """What was checked, its status, what was found and, for a problem, what fixes it."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_data(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}
