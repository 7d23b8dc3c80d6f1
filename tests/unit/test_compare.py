"""Matching a token of one atlas to the tokens of another: characters for text, regions for images."""

from qkatlas.capture.inputs import patch_provenance
from qkatlas.capture.model import ImageSpec
from qkatlas.compare import ItemSide, match, spans_from_text


def text_side(text: str, tokens: list[str], special: list[bool] | None = None) -> ItemSide:
    special = special or [False] * len(tokens)
    start, end = spans_from_text(text, tokens, special)
    return ItemSide(tokens, special, start, end, [-1] * len(tokens), [-1] * len(tokens))


def image_side(size: int, patch: int) -> ItemSide:
    spec = ImageSpec(size, patch, (0.5,) * 3, (0.5,) * 3)
    texts, special, rows, cols = patch_provenance(spec)
    return ItemSide(texts, special, [-1] * len(texts), [-1] * len(texts), rows, cols, spec.grid)


def test_spans_are_found_by_reading_token_texts_along_the_sentence():
    text = "The cat's paycheck."
    assert spans_from_text(text, ["[CLS]", "the", "cat", "'", "s", "pay", "##che", "##ck", ".", "[SEP]"],
                           [True] + [False] * 8 + [True]) == (
        [-1, 0, 4, 7, 8, 10, 13, 16, 18, -1], [-1, 3, 7, 8, 9, 13, 16, 18, 19, -1])
    # byte-level BPE pieces carry their space; a byte of a multi-byte character is not found
    assert spans_from_text("a café", ["a", " caf", "\ufffd"], [False] * 3) == ([0, 2, -1], [1, 5, -1])


def test_one_word_cut_two_ways_matches_every_piece_it_overlaps():
    text = "paycheck day"
    bpe = text_side(text, ["pay", "check", " day"])
    wordpiece = text_side(text, ["[CLS]", "pay", "##che", "##ck", "day", "[SEP]"], [True, False, False, False,
                                                                                   False, True])
    assert match(bpe, 1, wordpiece) == [2, 3]  # "check" is "##che" + "##ck"
    assert match(wordpiece, 2, bpe) == [1]
    assert match(bpe, 2, wordpiece) == [4]
    assert match(wordpiece, 0, wordpiece) == [0]  # [CLS] to [CLS]
    assert match(wordpiece, 0, bpe) == []  # BPE has no [CLS]


def test_a_patch_matches_the_patches_over_the_same_region_of_another_grid():
    dino = image_side(224, 14)  # 16 x 16 + CLS
    vit = image_side(224, 16)  # 14 x 14 + CLS
    first = match(dino, 1, vit)  # dino patch r0 c0 covers [0, 1/16)^2: vit's r0 c0 only
    assert [vit.text[j] for j in first] == ["patch r0 c0"]
    # vit patch r1 c1 covers [1/14, 2/14): dino rows 1 and 2 (1/16..3/16 overlaps it), columns alike
    j = vit.text.index("patch r1 c1")
    assert sorted(dino.text[i] for i in match(vit, j, dino)) == ["patch r1 c1", "patch r1 c2", "patch r2 c1",
                                                                 "patch r2 c2"]
    assert match(dino, 0, vit) == [0]  # CLS to CLS


def test_a_patch_matches_itself_on_the_same_grid():
    side = image_side(64, 16)
    assert all(match(side, p, side) == [p] for p in range(len(side.text)))
