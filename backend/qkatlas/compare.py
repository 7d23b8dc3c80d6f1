"""Two atlases side by side: which tokens of atlas B are a given token of atlas A.

Pure functions. Two atlases built on the same corpus (the same corpus hash) hold the same items
in the same order, but two models cut them differently: WordPiece, byte-level BPE and patch
grids of other sizes. A token of A is matched to the tokens of B in the same item that cover
the same part of it:

- text: the same characters. Atlases built since issue 15 store each token's character span
  (`start`, `end`, from the tokenizer); older ones get spans found by reading the token texts
  along the item's text (`spans_from_text`). Tokens whose spans overlap match.
- images: the same region of the image. Both models saw the same centre crop, so a patch is a
  square of the unit image; patches of B whose squares overlap it match.
- special tokens ([CLS], [SEP], BOS, registers) cover nothing: they match B's special tokens
  of the same text, and an image's prefix tokens match B's prefix token at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

# Marks byte-level BPE and SentencePiece put before a word, and WordPiece before a word's rest.
_MARKS = ("##", "\u0120", "\u2581")


@dataclass(frozen=True)
class ItemSide:
    """One item's tokens in one atlas: each list has one entry per token, in position order."""

    text: list[str]
    special: list[bool]
    start: list[int]  # character span in the item's text, -1 where none
    end: list[int]
    row: list[int]  # patch row and column, -1 for text and prefix tokens
    col: list[int]
    grid: int = 0  # patches per side (images), 0 for text


def clean(token: str) -> str:
    """A token's text as it appears in the item: word marks removed, stripped, lower case."""
    token = token.strip()
    for mark in _MARKS:
        token = token.removeprefix(mark)
    return token.strip().lower()


def spans_from_text(text: str, tokens: list[str], special: list[bool]) -> tuple[list[int], list[int]]:
    """(starts, ends): each token's characters in `text`, found by reading the tokens in order;
    -1 for special tokens and for tokens not found (a byte of a multi-byte character)."""
    lowered = text.lower()
    cursor, starts, ends = 0, [], []
    for token, is_special in zip(tokens, special):
        piece = clean(token)
        at = -1 if is_special or not piece else lowered.find(piece, cursor)
        if at < 0:
            starts.append(-1)
            ends.append(-1)
            continue
        starts.append(at)
        ends.append(at + len(piece))
        cursor = at + len(piece)
    return starts, ends


def match_text(a: ItemSide, position: int, b: ItemSide) -> list[int]:
    """Positions in B of the tokens covering the characters of A's token at `position` (special
    tokens: B's special tokens of the same text)."""
    if a.special[position] or a.start[position] < 0:
        if not a.special[position]:
            return []
        return [j for j, (t, s) in enumerate(zip(b.text, b.special)) if s and t == a.text[position]]
    lo, hi = a.start[position], a.end[position]
    return [j for j in range(len(b.text)) if b.start[j] >= 0 and b.start[j] < hi and lo < b.end[j]]


def match_patch(a: ItemSide, position: int, b: ItemSide) -> list[int]:
    """Positions in B of the patches overlapping A's patch at `position` on the unit image (a
    prefix token: B's prefix token at the same place, if B has one)."""
    if a.row[position] < 0:
        prefix_b = [j for j, r in enumerate(b.row) if r < 0]
        return [position] if position in prefix_b else []
    r, c = a.row[position], a.col[position]
    rows = _overlapping(r, a.grid, b.grid)
    cols = _overlapping(c, a.grid, b.grid)
    wanted = {(rb, cb) for rb in rows for cb in cols}
    return [j for j, (rb, cb) in enumerate(zip(b.row, b.col)) if (rb, cb) in wanted]


def _overlapping(index: int, grid_a: int, grid_b: int) -> range:
    """The cells of a grid_b split of [0, 1) that overlap cell `index` of a grid_a split."""
    first = (index * grid_b) // grid_a
    last = -(-((index + 1) * grid_b) // grid_a) - 1  # ceil, then the cell before
    return range(first, max(first, last) + 1)


def match(a: ItemSide, position: int, b: ItemSide) -> list[int]:
    """Positions in B of the token(s) that are A's token at `position`."""
    return match_patch(a, position, b) if a.grid else match_text(a, position, b)
