"""API Gateway usage plans: the throttle (a token bucket per plan and key) and the quota (per UTC period)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable


class UsageLimiter:
    """Usage-plan throttle (token bucket per plan and key) and quota (per UTC period)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None) -> None:
        self.clock = clock
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._buckets: dict[tuple, list[float]] = {}  # key -> [tokens, last refill]
        self._quotas: dict[tuple, int] = {}

    def admit(self, plan_id: str, key_id: str, throttle: dict, quota: dict) -> str | None:
        """None if the request may go on, else the 429 message."""
        with self._lock:
            if throttle and not self._take_token(plan_id, key_id, throttle):
                return "Too Many Requests"
            if quota and quota.get("limit") is not None:
                window = (plan_id, key_id, _period_start(self.now(), quota.get("period", "DAY")))
                if self._quotas.get(window, 0) >= int(quota["limit"]):
                    return "Limit Exceeded"
                self._quotas[window] = self._quotas.get(window, 0) + 1
        return None

    def _take_token(self, plan_id: str, key_id: str, throttle: dict) -> bool:
        rate = float(throttle.get("rateLimit", 0) or 0)
        burst = float(throttle.get("burstLimit", 0) or 0)
        if rate <= 0 and burst <= 0:
            return True  # no throttle configured
        key = (plan_id, key_id, rate, burst)
        now = self.clock()
        bucket = self._buckets.setdefault(key, [max(burst, 1.0), now])
        bucket[0] = min(max(burst, 1.0), bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        return False


def _period_start(now: datetime, period: str) -> str:
    if period == "MONTH":
        return now.strftime("%Y-%m")
    if period == "WEEK":
        return now.strftime("%G-W%V")
    return now.strftime("%Y-%m-%d")
