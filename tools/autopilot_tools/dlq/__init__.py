"""Dead-lettered events: what failed, where it came from, and sending it back after a fix."""
