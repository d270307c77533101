"""Multilang: components in any language over Storm's protocol on stdin/stdout.

Host side (``ShellBolt``, ``ShellSpout``), the protocol's codecs (JSON with
``end`` lines, msgpack), child process management, and Squall's own adapter
that runs Squall ``Bolt``/``Spout`` classes out of process (``isolated=True``).
Layer: above ``runtime`` (it plugs into the engine through component hooks),
below ``daemon``.
"""

from squall.multilang.codec import JsonCodec, MsgpackCodec, ProtocolError, codec_for
from squall.multilang.isolated import IsolatedBolt, IsolatedSpout
from squall.multilang.shell import ShellBolt, ShellError, ShellProcessError, ShellSpout

__all__ = [
    "IsolatedBolt",
    "IsolatedSpout",
    "JsonCodec",
    "MsgpackCodec",
    "ProtocolError",
    "ShellBolt",
    "ShellError",
    "ShellProcessError",
    "ShellSpout",
    "codec_for",
]
