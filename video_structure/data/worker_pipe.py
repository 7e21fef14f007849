"""Messages between a process and its worker subprocess over a pipe: each one a 64-bit
little-endian length, then that many bytes (a pickle of builtins and numpy arrays, for
`send` / `receive`). Standard library only, so a worker that must not import TensorFlow (the
DMCS renderer) can use it.
"""

import pickle
import struct

_HEADER = struct.Struct("<Q")


def send_bytes(stream, payload: bytes) -> None:
  stream.write(_HEADER.pack(len(payload)))
  stream.write(payload)
  stream.flush()


def receive_bytes(stream) -> bytes:
  """The next message's bytes; EOFError if the stream ends before or inside it."""
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    raise EOFError("stream closed")
  (size,) = _HEADER.unpack(header)
  payload = stream.read(size)
  if len(payload) < size:
    raise EOFError("stream closed in the middle of a message")
  return payload


def send(stream, message) -> None:
  send_bytes(stream, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def receive(stream):
  return pickle.loads(receive_bytes(stream))
