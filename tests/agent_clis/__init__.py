"""Claude Code and Codex, the real CLIs from the npm registry, headless through the gateway."""
