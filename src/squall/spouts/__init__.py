"""Spouts for external sources.

* :class:`RedisStreamSpout`: a Redis stream read through a consumer group,
  at-least-once (``XACK`` on ack, failed entries emitted again).

Trident spouts over Redis streams and files are in :mod:`squall.trident.sources`.
"""

from squall.spouts.redis_streams import RedisStreamSpout

__all__ = ["RedisStreamSpout"]
