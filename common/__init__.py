"""Small helpers shared by every command: user-facing errors, atomic writes, device choice."""
