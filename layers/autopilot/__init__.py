"""ecs-autopilot: event-driven autoscaling and self-healing for Amazon ECS."""

__version__ = "0.1.0"
