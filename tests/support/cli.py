"""Reading what a CLI command printed."""

from __future__ import annotations

__all__ = ["one_error_line"]


def one_error_line(stderr: str) -> str:
    """The stderr of a failed command: one line, no traceback (a progress line may precede it)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line and not line.startswith("loading ")]
    assert len(lines) == 1, stderr
    return lines[0]
