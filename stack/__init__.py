"""The composition root above the stages: the `retail` CLI and the local stack (services under supervisord,
health checks, `up`, `down`, `status`, the demo)."""
