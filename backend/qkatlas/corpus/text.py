"""Text corpora: the bundled sentences and loaders for a user's .txt, .jsonl or .csv file.

First stage of the pipeline: each sentence becomes a TextItem whose label says where it came
from ("file:line"), so a point in an atlas can be traced back to its source line.
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..errors import InvalidInput, UnknownCorpus
from . import Corpus, TextItem, content_hash

DEFAULT_ID = "default"
DEFAULT_FILE = "sentences.txt"


def hash_items(items) -> str:
    return content_hash(part for item in items for part in (item.label, item.text))


@lru_cache(maxsize=1)
def default_corpus() -> Corpus:
    resource = resources.files(__package__) / "data" / DEFAULT_FILE
    lines = _txt_lines(resource.read_text(encoding="utf-8"), DEFAULT_FILE)
    return _corpus(DEFAULT_ID, DEFAULT_FILE, lines, f"bundled {DEFAULT_FILE}")


def _corpus(corpus_id: str, name: str, lines, source: str) -> Corpus:
    """`lines`: (line number, text) pairs; blank texts are dropped, the rest keep their line."""
    kept = [(number, text.strip()) for number, text in lines if text.strip()]
    items = tuple(TextItem(item=i, text=text, label=f"{name}:{number}")
                  for i, (number, text) in enumerate(kept))
    if not items:
        raise InvalidInput(f"{name} holds no sentences (it is empty or every line is blank)")
    return Corpus(corpus_id, "text", items, hash_items(items), source)


def _txt_lines(content: str, name: str):
    return enumerate(content.splitlines(), start=1)


def _jsonl_lines(content: str, name: str):
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name}, line {number}: not valid JSON ({exc.msg})") from None
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise InvalidInput(f'{name}, line {number}: expected a JSON object with a "text" string')
        yield number, text


def _csv_rows(content: str, name: str):
    rows = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [column.strip() for column in next(rows, [])]
        if not header:
            return
        if "text" not in header:
            raise InvalidInput(f'{name}: no "text" column; the columns are {", ".join(map(repr, header))}')
        column = header.index("text")
        for row in rows:
            # line_num is the line the row ends on, which is the one a person can find
            yield rows.line_num, row[column] if column < len(row) else ""
    except csv.Error as exc:
        raise InvalidInput(f"{name}, line {rows.line_num}: not readable as CSV ({exc})") from None


READERS = {".txt": _txt_lines, ".jsonl": _jsonl_lines, ".csv": _csv_rows}


def load_path(path) -> Corpus:
    """A user's file as a corpus whose id is the file name; blank sentences are skipped."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise UnknownCorpus(f"no such file: {path}")
    reader = READERS.get(path.suffix.lower()) if path.is_file() else None
    if reader is None:
        kind = "a folder" if path.is_dir() else f"a {path.suffix or 'extensionless'} file"
        raise InvalidInput(f"{name} is {kind}; a text corpus is a .txt file (one sentence per line), "
                           f'a .jsonl file (a "text" field per line) or a .csv file (a "text" column)')
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name} is not UTF-8 text (undecodable byte at offset {exc.start})") from None
    return _corpus(name, name, reader(content, name), str(path))
