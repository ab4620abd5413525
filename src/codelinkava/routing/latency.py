"""Time to first chunk, remembered: a moving average per deployment, a p95 per model group.

`latency-based-routing` sends each request to the deployment whose recent
first chunks came soonest; a hedged group starts its second attempt after the
group's observed p95. Both are fed only by answers that streamed, and both
cost a few arithmetic operations per request: the p95 is recomputed every
`RECOMPUTE_EVERY` samples, not on every read.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["FirstChunkTimes", "MovingAverage"]


class MovingAverage:
    """An exponentially weighted mean; None until the first sample."""

    __slots__ = ("alpha", "value")

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def add(self, sample: float) -> None:
        value = self.value
        self.value = sample if value is None else value + self.alpha * (sample - value)


class FirstChunkTimes:
    """The last `size` first-chunk times of a model group and their 95th percentile."""

    RECOMPUTE_EVERY = 10

    __slots__ = ("_p95", "_samples", "_since", "min_samples")

    def __init__(self, size: int = 200, min_samples: int = 20) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._since = 0
        self._p95: float | None = None
        #: Fewer samples than this give no p95 (a hedge then waits its `max_delay`).
        self.min_samples = min_samples

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self._since += 1

    def __len__(self) -> int:
        return len(self._samples)

    def p95(self) -> float | None:
        """The 95th percentile (nearest rank) of the samples kept, None while too few."""
        samples = self._samples
        if len(samples) < self.min_samples:
            return None
        if self._p95 is None or self._since >= self.RECOMPUTE_EVERY:
            ordered = sorted(samples)
            self._p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
            self._since = 0
        return self._p95
