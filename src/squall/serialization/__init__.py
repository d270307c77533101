"""serialization layer: tuple batches <-> bytes (msgpack)."""

from squall.serialization.batch import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_FRAME_BYTES_KEY,
    BatchDecodeError,
    BatchDecoder,
    BatchEncoder,
    FrameTooLargeError,
    SerializationError,
    UnencodableValueError,
    stream_fields_of,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_FRAME_BYTES_KEY",
    "BatchDecodeError",
    "BatchDecoder",
    "BatchEncoder",
    "FrameTooLargeError",
    "SerializationError",
    "UnencodableValueError",
    "stream_fields_of",
]
