"""transport layer: bytes between workers (ZeroMQ)."""

from squall.transport.zmq_link import LinkedEngine, ZmqLink

__all__ = ["LinkedEngine", "ZmqLink"]
