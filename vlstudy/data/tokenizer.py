"""A BERT WordPiece tokenizer trained on the world's corpus, used like any BERT tokenizer.

Training uses Hugging Face ``tokenizers``; the result is saved as a standard BERT
tokenizer folder, so ``load_tokenizer`` takes this folder or any real BERT checkpoint's.
"""
from __future__ import annotations

import functools

from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(corpus: Path, out_dir: Path, vocab_size: int = 2000):
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train([str(corpus)], vocab_size=vocab_size, min_frequency=1,
             special_tokens=SPECIAL_TOKENS, show_progress=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wp.save_model(str(out_dir))
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
