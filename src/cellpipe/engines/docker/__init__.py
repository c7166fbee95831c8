"""The docker engine: one image per step (pinned, built offline), each step in a container."""
