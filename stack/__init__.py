"""The local stack: embedded services under supervisord, their health checks, `up`, `down`, `status`."""
