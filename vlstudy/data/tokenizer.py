"""A BERT WordPiece tokenizer for the world's language, used like any BERT tokenizer.

Its vocabulary is built here, not by ``tokenizers``' WordPiece trainer: that trainer's
alphabet and tie-breaks follow Rust hash-map order, which changes from process to process,
so two builds of one world numbered (and even chose) its tokens differently and every run
downstream differed (a VQA-D score by up to 7 points between two fresh builds). The world's
language is small, so the vocabulary is every word of its text (most frequent first, ties
in alphabetical order) plus every character alone and as a ``##`` continuation, so any word
still tokenizes. The result is a standard BERT tokenizer folder: ``load_tokenizer`` takes it
or any real BERT checkpoint's.
"""
from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocabulary(lines, vocab_size: int = 2000) -> list[str]:
    """Special tokens, characters, ``##`` characters, then words by frequency (ties: alphabetical),
    normalised and split as BERT does (lower case, accents stripped, punctuation apart)."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    normalise, split = BertNormalizer(lowercase=True), BertPreTokenizer()
    words = Counter(w for line in lines
                    for w, _ in split.pre_tokenize_str(normalise.normalize_str(line.strip())))
    chars = sorted({c for w in words for c in w})
    vocab = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars]
    taken = set(vocab)
    ranked = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if w not in taken]
    if len(vocab) > vocab_size:
        raise ValueError(f"a vocabulary of {vocab_size} cannot hold the {len(vocab)} special tokens "
                         f"and characters of the text")
    return vocab + ranked[:vocab_size - len(vocab)]


def train_tokenizer(corpus: Path, out_dir: Path, vocab_size: int = 2000):
    """Write a BERT tokenizer folder for the text in ``corpus`` (one text per line)."""
    from transformers import BertTokenizerFast

    with open(corpus, encoding="utf-8") as f:
        vocab = build_vocabulary(f, vocab_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # loading from the folder (not the constructor, whose arguments changed in transformers 5)
    tok = BertTokenizerFast.from_pretrained(str(out_dir), do_lower_case=True, local_files_only=True)
    tok.save_pretrained(str(out_dir))
    return tok


def load_tokenizer(path: Path):
    """A tokenizer from a local folder (the world's, or a real BERT's). Never downloads.
    Loaded once per process and folder state (a study's worker trains many runs)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {path}")
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(path.iterdir()))
    return _load_tokenizer(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _load_tokenizer(path: str, stamp: tuple):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(path, local_files_only=True)
