"""Sequence-to-sequence tasks read from JSONL files: your own data, no code.

A data directory holds ``train.jsonl`` and any number of ``<split>.jsonl``. Each line is
``{"input": ..., "target": ...}``: two equal-length strings (one token per character) or two
equal-length lists of ints. Every line of a file has the same length; files may differ, and the
longer splits are the harder ones. The input vocabulary and the target classes are those of
``train.jsonl``, saved with the run, so a run solves new inputs without its files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .base import Batch, InputError, ModelSettings, Split, Task

TRAIN = "train"
SAMPLE_SALT = 19  # rng stream of the examples drawn from a file


class Sequences(Task):
    """Token-wise classification on files; see the module docstring.

    data: the directory; kind: ``"str"`` or ``"int"``; symbols, classes: the input tokens and
    target classes in id order; splits: {split name: length}.
    """

    name = "sequences"
    train_splits = (TRAIN,)
    model_settings = ModelSettings(board=(), attention="local", causal=False)

    def __init__(self, data: str | None = None, kind: str = "str", symbols: list | None = None,
                 classes: list | None = None, splits: dict | None = None):
        if data is None or symbols is None or classes is None or splits is None:
            raise InputError("task sequences trains on files: give --data DIR (train.jsonl and <split>.jsonl)")
        if kind not in ("str", "int") or not symbols or not classes or TRAIN not in splits:
            raise InputError("sequences: a saved task config needs kind str or int, symbols, classes and a train split")
        self.data, self.kind = Path(data), kind
        self.symbols, self.classes = list(symbols), list(classes)
        self.lengths = {str(k): int(v) for k, v in splits.items()}
        self.vocab_size, self.num_classes = len(self.symbols), len(self.classes)
        self.eval_splits = tuple(sorted(self.lengths, key=lambda s: (self.lengths[s], s)))
        self._token = {s: i for i, s in enumerate(self.symbols)}
        self._class = {c: i for i, c in enumerate(self.classes)}
        self._loaded: dict[str, Batch] = {}

    @classmethod
    def from_data(cls, path) -> "Sequences":
        """Read and check every ``*.jsonl`` in ``path``; the vocabulary comes from ``train.jsonl``."""
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"data directory {path} does not exist")
        files = sorted(path.glob("*.jsonl"))
        if not any(f.stem == TRAIN for f in files):
            raise InputError(f"data directory {path} has no {TRAIN}.jsonl")
        rows = {f.stem: read_rows(f) for f in files}
        kind, train_rows = rows[TRAIN]
        symbols = sorted({t for _, inp, _ in train_rows for t in inp})
        classes = sorted({t for _, _, tgt in train_rows for t in tgt})
        task = cls(str(path.resolve()), kind, symbols, classes, {s: len(r[1][0][1]) for s, r in rows.items()})
        for stem, (file_kind, file_rows) in rows.items():
            task._loaded[stem] = task._encode(path / f"{stem}.jsonl", file_kind, file_rows)
        return task

    def moved_to(self, path) -> "Sequences":
        if not Path(path).is_dir():
            raise InputError(f"data directory {path} does not exist")
        return Sequences(str(Path(path).resolve()), self.kind, self.symbols, self.classes, self.lengths)

    def config(self) -> dict:
        return {"data": str(self.data), "kind": self.kind, "symbols": self.symbols, "classes": self.classes,
                "splits": self.lengths}

    def split(self, name: str) -> Split:
        name = str(name).strip()
        if name not in self.lengths and not (name and Path(name).name == name and (self.data / f"{name}.jsonl").is_file()):
            raise InputError(f"unknown split {name!r}: no {self.data / (name + '.jsonl')}; "
                             f"choose from {', '.join(self.eval_splits)}")
        return Split(name, self.lengths.get(name) or self._load(name).inputs.shape[1])

    def input_length(self, split: Split) -> int:
        return split.difficulty

    def generate(self, split: Split, n: int, seed: int) -> Batch:
        """The file's examples in order when ``n`` covers it, else ``n`` drawn without replacement."""
        batch = self._load(split.name)
        if n >= len(batch):
            return batch
        idx = np.sort(np.random.default_rng([seed, SAMPLE_SALT]).choice(len(batch), n, replace=False))
        return _take(batch, torch.from_numpy(idx))

    def train_batch(self, split: Split, n: int, seed: int) -> Batch:
        """``n`` examples of the file drawn with replacement."""
        batch = self._load(split.name)
        idx = np.random.default_rng([seed, SAMPLE_SALT]).integers(0, len(batch), n)
        return _take(batch, torch.from_numpy(idx))

    def parse(self, text: str) -> torch.Tensor:
        if self.kind == "str":
            tokens = list(text.strip())
        else:
            try:
                tokens = json.loads(text) if text.strip().startswith("[") else [int(t) for t in text.replace(",", " ").split()]
            except ValueError:
                raise InputError(f"expected a list of ints such as [0, 1, 1], got {text.strip()[:40]!r}") from None
            if not isinstance(tokens, list) or not all(_is_int(t) for t in tokens):
                raise InputError(f"expected a list of ints such as [0, 1, 1], got {text.strip()[:40]!r}")
        if not tokens:
            raise InputError("empty input")
        bad = [t for t in tokens if t not in self._token]
        if bad:
            raise InputError(f"unknown symbol {bad[0]!r}: the run's inputs use {_show(self.symbols)}")
        return torch.tensor([self._token[t] for t in tokens], dtype=torch.long)

    def decode(self, text: str, inputs: torch.Tensor, logits: torch.Tensor) -> str:
        out = [self.classes[int(i)] for i in self.predict(inputs[None], logits[None])[0].tolist()]
        return "".join(out) if self.kind == "str" else json.dumps(out)

    def _load(self, name: str) -> Batch:
        if name not in self._loaded:
            path = self.data / f"{name}.jsonl"
            if not path.is_file():
                raise InputError(f"data file {path} is missing; if the data folder moved, give its new place "
                                 f"(looped.evaluate on Sequences.moved_to(folder))",
                                 cli=f"data file {path} is missing; if the data folder moved, give its new place "
                                     f"with --data DIR")
            kind, rows = read_rows(path)
            self._loaded[name] = self._encode(path, kind, rows)
        return self._loaded[name]

    def _encode(self, path: Path, kind: str, rows: list) -> Batch:
        """Token and class ids of ``rows``; ``InputError`` naming the line of the first unknown symbol."""
        if kind != self.kind:
            raise InputError(f"{path}: holds {_kinds[kind]}, but the run's data holds {_kinds[self.kind]}")
        inputs, targets = [], []
        for lineno, inp, tgt in rows:
            for seq, table, what, known in ((inp, self._token, "input", self.symbols),
                                            (tgt, self._class, "target", self.classes)):
                bad = next((t for t in seq if t not in table), None)
                if bad is not None:
                    raise InputError(f"{path}:{lineno}: unknown {what} symbol {bad!r}; the run's {what}s use "
                                     f"{_show(known)} (those of {TRAIN}.jsonl)")
            inputs.append([self._token[t] for t in inp])
            targets.append([self._class[t] for t in tgt])
        return Batch(torch.tensor(inputs, dtype=torch.long), torch.tensor(targets, dtype=torch.long))


_kinds = {"str": "strings", "int": "lists of ints"}


def read_rows(path: Path) -> tuple[str, list[tuple[int, list, list]]]:
    """(kind, [(line number, input tokens, target tokens)]) of one JSONL file; ``InputError`` naming file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first line
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    rows, kind, length = [], None, None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise InputError(f"{where}: not a JSON line") from None
        if not isinstance(obj, dict) or set(obj) != {"input", "target"}:
            raise InputError(f'{where}: expected an object with exactly the keys "input" and "target"')
        inp, tgt = obj["input"], obj["target"]
        line_kind = _kind(inp)
        if line_kind is None or _kind(tgt) != line_kind:
            raise InputError(f"{where}: input and target must both be strings or both lists of ints")
        if len(inp) != len(tgt):
            raise InputError(f"{where}: input has {len(inp)} tokens but target has {len(tgt)}; they must be equal")
        if not inp:
            raise InputError(f"{where}: empty input")
        if kind is None:
            kind, length = line_kind, len(inp)
        elif line_kind != kind:
            raise InputError(f"{where}: {_kinds[line_kind]}, but the lines before hold {_kinds[kind]}")
        elif len(inp) != length:
            raise InputError(f"{where}: length {len(inp)}, but the first line has {length}; one length per file")
        rows.append((lineno, list(inp), list(tgt)))
    if not rows:
        raise InputError(f"{path}: empty file (no examples)")
    return kind, rows


def _kind(value) -> str | None:
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(_is_int(v) for v in value):
        return "int"
    return None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(symbols: list) -> str:
    text = "".join(symbols) if all(isinstance(s, str) for s in symbols) else json.dumps(symbols)
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


def _take(batch: Batch, idx: torch.Tensor) -> Batch:
    return Batch(batch.inputs[idx], batch.targets[idx], batch.positions)
