"""Corpora: the bundled sentences and photographs, user files, and the errors people see."""

import json

import pytest
from PIL import Image

from qkatlas.corpus import images, load_corpus, text
from qkatlas.errors import InvalidInput, UnknownCorpus


@pytest.fixture(scope="module")
def default_images():
    return images.default_corpus()


def write(path, content):
    path.write_text(content, encoding="utf-8")
    return path


def test_default_text_corpus_has_500_unique_sentences_with_line_labels():
    corpus = text.default_corpus()
    sentences = [item.text for item in corpus.items]
    assert corpus.id == "default" and corpus.modality == "text"
    assert len(sentences) >= 500
    assert len(set(sentences)) == len(sentences)
    assert all(s and s == s.strip() for s in sentences)
    assert [item.item for item in corpus.items] == list(range(len(sentences)))
    assert corpus.items[11].label == "sentences.txt:12"


def test_default_text_corpus_hash_is_stable():
    corpus = text.default_corpus()
    # pinned: a change to the bundled sentences or to the hash makes every atlas's capture stale
    assert corpus.hash == "8a20ae1b7aec6e132320a43732cad11379654a200c49d5e754cf1cebbd52a2c7"


def test_txt_loader_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    corpus = text.load_path(write(tmp_path / "mine.txt", "The first one.\n\n  \nThe second one.  \n"))
    assert corpus.id == "mine.txt"
    assert [(i.item, i.text, i.label) for i in corpus.items] == [
        (0, "The first one.", "mine.txt:1"), (1, "The second one.", "mine.txt:4")]


def test_jsonl_loader_reads_the_text_field(tmp_path):
    lines = [json.dumps({"text": "A bat flew by.", "id": 7}), "", json.dumps({"text": "Bark, dog!"})]
    corpus = text.load_path(write(tmp_path / "s.jsonl", "\n".join(lines)))
    assert [i.text for i in corpus.items] == ["A bat flew by.", "Bark, dog!"]
    assert corpus.items[1].label == "s.jsonl:3"


def test_csv_loader_reads_the_text_column_with_quoted_commas(tmp_path):
    corpus = text.load_path(write(tmp_path / "s.csv", 'id,text\n1,"Hello, world."\n2,"She said ""hi""."\n'))
    assert corpus.id == "s.csv"
    assert [i.text for i in corpus.items] == ["Hello, world.", 'She said "hi".']


def test_user_text_hash_depends_on_content(tmp_path):
    one = text.load_path(write(tmp_path / "a.txt", "One sentence.\n"))
    same = text.load_path(tmp_path / "a.txt")
    other = text.load_path(write(tmp_path / "a.txt", "Another sentence.\n"))
    assert one.hash == same.hash != other.hash


@pytest.mark.parametrize("name, content, words", [
    ("empty.txt", "", ["empty.txt", "no sentences"]),
    ("blank.txt", "\n   \n\n", ["blank.txt", "no sentences"]),
    ("bad.jsonl", '{"text": "fine"}\n{not json}\n', ["bad.jsonl", "line 2", "JSON"]),
    ("notext.jsonl", '{"text": "fine"}\n{"sentence": "x"}\n', ["notext.jsonl", "line 2", '"text"']),
    ("numbers.jsonl", '{"text": 3}\n', ["numbers.jsonl", "line 1"]),
    ("cols.csv", "id,sentence\n1,hello\n", ["cols.csv", "'id'", "'sentence'"]),
    ("notes.md", "# Notes\n", ["notes.md", ".txt", ".jsonl", ".csv"]),
])
def test_bad_text_files_raise_invalid_input_naming_the_file(tmp_path, name, content, words):
    with pytest.raises(InvalidInput) as caught:
        text.load_path(write(tmp_path / name, content))
    for word in words:
        assert word in str(caught.value)


def test_non_utf8_text_raises_invalid_input(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\u00e9 au lait.\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"latin1\.txt.*UTF-8"):
        text.load_path(path)


def test_a_folder_is_not_a_text_corpus(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(InvalidInput, match=r"folder.*\.txt"):
        text.load_path(tmp_path / "folder")


def test_default_image_corpus_is_distinct_rgb_224_photographs(default_images):
    corpus = default_images
    assert corpus.id == "images" and corpus.modality == "image"
    assert len(corpus.items) >= 40
    assert all(i.image.mode == "RGB" and i.image.size == (224, 224) for i in corpus.items)
    assert len({i.image.tobytes() for i in corpus.items}) == len(corpus.items)
    assert len({i.label for i in corpus.items}) == len(corpus.items)
    assert corpus.items[0].label == "astronaut (centre)"


def test_default_image_corpus_is_deterministic(default_images):
    assert images.default_corpus().hash == default_images.hash == images.hash_items(default_images.items)


def test_image_folder_is_read_sorted_and_centre_cropped(tmp_path):
    Image.new("RGB", (448, 300), (200, 10, 10)).save(tmp_path / "b.png")
    Image.new("L", (100, 150), 128).save(tmp_path / "a.JPG")
    Image.new("RGBA", (224, 224), (0, 0, 255, 100)).save(tmp_path / "c.webp")
    (tmp_path / "readme.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (50, 50)).save(tmp_path / "sub" / "d.png")

    corpus = images.load_path(tmp_path)
    assert corpus.id == tmp_path.name
    assert [i.label for i in corpus.items] == ["a.JPG", "b.png", "c.webp"]
    assert all(i.image.mode == "RGB" and i.image.size == (224, 224) for i in corpus.items)
    assert corpus.items[1].image.getpixel((112, 112)) == (200, 10, 10)


def test_corrupt_image_raises_invalid_input_naming_it(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "good.png")
    (tmp_path / "x.png").write_bytes(b"\x00garbage, not a png\xff" * 10)
    with pytest.raises(InvalidInput, match=r"x\.png"):
        images.load_path(tmp_path)


def test_folder_without_images_raises_invalid_input(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"no images"):
        images.load_path(tmp_path)


def test_a_file_is_not_an_image_corpus(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "one.png")
    with pytest.raises(InvalidInput, match=r"one\.png.*folder"):
        images.load_path(tmp_path / "one.png")


def test_load_corpus_limit_keeps_the_first_items_and_rehashes():
    corpus = load_corpus("default", "text", limit=5)
    assert [i.item for i in corpus.items] == [0, 1, 2, 3, 4]
    assert corpus.hash == text.hash_items(corpus.items) != text.default_corpus().hash


def test_load_corpus_reads_user_paths(tmp_path):
    corpus = load_corpus(str(write(tmp_path / "two.txt", "One.\nTwo.\n")), "text")
    assert corpus.id == "two.txt" and len(corpus.items) == 2


@pytest.mark.parametrize("limit", [0, -3])
def test_load_corpus_rejects_limits_below_one(limit):
    with pytest.raises(InvalidInput):
        load_corpus("default", "text", limit=limit)


def test_load_corpus_refuses_images_for_a_text_model():
    with pytest.raises(InvalidInput, match="images"):
        load_corpus("images", "text")


def test_load_corpus_unknown_path_is_unknown_corpus(tmp_path):
    with pytest.raises(UnknownCorpus):
        load_corpus(str(tmp_path / "nowhere.txt"), "text")
