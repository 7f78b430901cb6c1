"""Generated tokens -> text, with stop strings, for edgelm.Llama.

Text is released only when it is whole: an incomplete UTF-8 character waits for its last byte,
and text that could still turn into a stop string waits until the next token decides, so a
stream never shows part of a stop string (the same rule as edgelm serve's).
"""
from __future__ import annotations

from typing import Callable, List


def _incomplete_tail(b: bytes) -> int:
    """Bytes at the end of b that start a UTF-8 character still missing bytes."""
    for k in range(1, min(4, len(b)) + 1):
        c = b[-k]
        if c & 0xC0 == 0x80:  # continuation byte: look further back for the lead
            continue
        need = 2 if c & 0xE0 == 0xC0 else 3 if c & 0xF0 == 0xE0 else 4 if c & 0xF8 == 0xF0 else 1
        return k if need > k else 0
    return 0


class TextAssembler:
    def __init__(self, piece: Callable[[int], bytes], stops: List[str]):
        self._piece = piece
        self._stops = [s.encode("utf-8") for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self._buf = bytearray()
        self._shown = 0          # bytes of _buf handed out by take()
        self._end = None         # where a stop string starts, once found
        self.stopped = False

    def push(self, tok: int) -> bool:
        """Adds a token; False once a stop string has appeared (generation should stop)."""
        if self.stopped:
            return False
        start = max(0, len(self._buf) - self._longest + 1)
        self._buf += self._piece(tok)
        if self._stops:
            hits = [i for i in (self._buf.find(s, start) for s in self._stops) if i >= 0]
            if hits:
                self._end = min(hits)
                self.stopped = True
                return False
        return True

    def _ready(self) -> int:
        """End of the text that may be shown now."""
        if self._end is not None:
            return self._end
        end = len(self._buf) - _incomplete_tail(self._buf)
        # Hold back a tail that is the start of a stop string.
        for s in self._stops:
            for k in range(min(len(s) - 1, end - self._shown), 0, -1):
                if self._buf[end - k:end] == s[:k]:
                    end -= k
                    break
        return end

    def take(self) -> str:
        """Text that is final and not yet taken."""
        end = self._ready()
        if end <= self._shown:
            return ""
        out = bytes(self._buf[self._shown:end])
        self._shown = end
        return out.decode("utf-8", "ignore")

    def finish_tail(self) -> str:
        """Everything not yet taken, at the end of generation (a broken character is dropped)."""
        end = self._end if self._end is not None else len(self._buf)
        out = bytes(self._buf[self._shown:end]) if end > self._shown else b""
        self._shown = max(self._shown, end)
        return out.decode("utf-8", "ignore")

    def finish(self) -> str:
        """The whole text, up to a stop string."""
        end = self._end if self._end is not None else len(self._buf)
        return bytes(self._buf[:end]).decode("utf-8", "ignore")
