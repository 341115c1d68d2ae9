"""MLLP framing (<VT> message <FS><CR>): incremental decoder and framing helpers, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

START = b"\x0b"
END = b"\x1c\r"


def frame(message: bytes | str) -> bytes:
    """Wrap one message in MLLP framing."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return START + data + END


@dataclass
class MllpDecoder:
    """Feeds bytes in, returns complete blocks; junk before <VT> is counted, oversized blocks are cut.

    Hand-written because python-hl7's ``MLLPStreamReader`` clears its whole buffer on an oversized
    block, losing the next message on the connection; a tap must resynchronise on the next <VT>.
    """

    max_size: int = 1_048_576
    buffer: bytearray = field(default_factory=bytearray)
    junk_bytes: int = 0
    oversized: int = 0
    _skipping: bool = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """Return complete blocks; ``None`` marks a block dropped for exceeding ``max_size``."""
        self.buffer.extend(data)
        out: list[bytes | None] = []
        while True:
            if self._skipping:
                end = self.buffer.find(END)
                if end < 0:
                    self.buffer.clear()
                    return out
                del self.buffer[: end + len(END)]
                self._skipping = False
                out.append(None)
                continue
            start = self.buffer.find(START)
            if start < 0:
                self.junk_bytes += len(self.buffer.strip())
                self.buffer.clear()
                return out
            if start > 0:
                self.junk_bytes += len(bytes(self.buffer[:start]).strip())
                del self.buffer[:start]
            end = self.buffer.find(END)
            if end < 0:
                if len(self.buffer) > self.max_size + 1:
                    self.oversized += 1
                    self._skipping = True
                    self.buffer.clear()
                    continue
                return out
            block = bytes(self.buffer[1:end])
            del self.buffer[: end + len(END)]
            if len(block) > self.max_size:
                self.oversized += 1
                out.append(None)
            else:
                out.append(block)

    @property
    def pending(self) -> int:
        """Bytes of an unfinished block (non-zero when a peer disconnects mid-message)."""
        return len(self.buffer)


def deframe_all(data: bytes, max_size: int = 64 * 1_048_576) -> list[bytes]:
    """All complete blocks of an MLLP-framed dump (oversized ones dropped)."""
    dec = MllpDecoder(max_size=max_size)
    return [b for b in dec.feed(data) if b is not None]
