"""Where each word's sub-word pieces are read from: windows over long texts, and which pieces a word pools.

Pure bookkeeping over piece ids, kept apart from the model so it can be checked on its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Where the windows over `length` pieces start: one window when it fits, else windows of `window` pieces
    that overlap by at least `overlap`, the last one ending at the text's end."""
    if length <= window:
        return [0] if length else []
    stride = window - overlap
    return [*range(0, length - window, stride), length - window]


def owning_windows(length: int, starts: list[int], window: int) -> list[tuple[int, int]]:
    """Per piece, the window (index into `starts`) and position that read it: the window where the piece sits
    farthest from a cut edge (a text's own start and end are not cuts: nothing is missing beyond them)."""
    owners = []
    for piece in range(length):
        def context(index: int) -> float:
            start = starts[index]
            left = piece - start if start > 0 else math.inf
            right = start + window - 1 - piece if start + window < length else math.inf
            return min(left, right)

        holding = [i for i, start in enumerate(starts) if start <= piece < start + window]
        best = max(holding, key=context)
        owners.append((best, piece - starts[best]))
    return owners


@dataclass
class PieceLayout:
    """The windows of a batch of texts and, per pooled piece, where it is read and which word it feeds."""

    windows: list[list[int]] = field(default_factory=list)  # piece ids per window, without special tokens
    source_rows: list[int] = field(default_factory=list)  # per pooled piece: its window
    source_positions: list[int] = field(default_factory=list)  # its position among the window's text pieces
    target_texts: list[int] = field(default_factory=list)  # the text ...
    target_words: list[int] = field(default_factory=list)  # ... and word it belongs to
    weights: list[float] = field(default_factory=list)  # 1 for first-piece pooling, 1/pieces for the mean

    @classmethod
    def build(cls, texts: list[list[list[int]]], window: int, overlap: int, pooling: str) -> PieceLayout:
        """`texts`: per text, per word, its piece ids (every word has at least one)."""
        layout = cls()
        for text_index, words in enumerate(texts):
            flat = [piece for pieces in words for piece in pieces]
            starts = window_starts(len(flat), window, overlap)
            owners = owning_windows(len(flat), starts, window)
            first_row = len(layout.windows)
            layout.windows += [flat[start : start + window] for start in starts]
            offset = 0
            for word_index, pieces in enumerate(words):
                pooled = 1 if pooling == "first" else len(pieces)
                for piece in range(offset, offset + pooled):
                    row, position = owners[piece]
                    layout.source_rows.append(first_row + row)
                    layout.source_positions.append(position)
                    layout.target_texts.append(text_index)
                    layout.target_words.append(word_index)
                    layout.weights.append(1.0 / pooled)
                offset += len(pieces)
        return layout
