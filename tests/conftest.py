"""What every suite shares: the hypothesis profile and the fast retry policy.

Suite-specific fixtures live in each suite's conftest; helpers in `support/`.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from codelinkava.providers import HTTPChatProvider
from support.builders import FAST_RETRY

# No per-example deadline: these machines are shared and noisy, and a property test that
# fails on a slow example fails at random. Slowness is measured in bench/, not here.
settings.register_profile(
    "codelinkava", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("codelinkava")


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of a few ms for every HTTP provider, so retry counts are tested without
    waiting seconds."""
    monkeypatch.setattr(HTTPChatProvider, "retry_policy", FAST_RETRY)
