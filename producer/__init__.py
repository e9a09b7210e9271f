"""Retail event producer: a simulation of customers, baskets and refunds, sent to Kafka.

Modes (`retail produce ...`, see `producer.cli`): `live` (Poisson arrivals now), `backfill` (days of
history, several worker processes) and `replay` (a point-of-sale CSV export). The simulation model is
configured in `producer/simulation.yaml`; its planted co-purchases are the ground truth of the
association rules (`producer.config.load_simulation_config().affinities`).

Importing the package has no side effects; the functions to call are `producer.backfill.backfill`,
`producer.live.live` and `producer.replay.replay`, each taking the platform `Settings`.
"""
