"""Task metrics, computed as the official evaluators compute them.

VQA accuracy follows ``vqaEval.py`` of the official VQA 2.0 tools (the 2021 HEAD version by
default, the pre-2021 one with ``version="legacy"``), quirks included: its answer
normalisation (punctuation, digits, articles, contractions) and its accuracy, min(1, matches
/ 3) averaged over the ten leave-one-annotator-out subsets (``PythonEvaluationTools/
vqaEvaluation/vqaEval.py`` in GT-Vision-Lab/VQA). VizWiz follows the VizWiz API's variant. Multi-label F1
thresholds probabilities at 0.5 and averages macro-F1 over the real labels only. Caption
quality is COCO's own BLEU-4 and CIDEr(-D) scorers (pycocoevalcap).
"""
from __future__ import annotations

import functools
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .paths import read_json

# --- the official answer normalisation -----------------------------------------------
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}
NUMBER_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
              "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
               "`", ",", "?", "!")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
# The official pattern, typo and all: "(?!<=\d)" is a lookahead that always succeeds, so
# this deletes every "." not followed by a digit (and, as passed, at most 32 of them).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")


def process_punctuation(text: str) -> str:
    """Delete or space out punctuation exactly as ``vqaEval.processPunctuation``."""
    out = text
    digit_comma = _COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, 32)


def process_digit_article(text: str) -> str:
    """Lower-case; number words to digits; drop articles; restore contractions."""
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


@functools.lru_cache(maxsize=1 << 16)
def normalize_answer(text: str) -> str:
    """The full normalisation used for answer vocabularies and soft scores (cached: answers
    repeat, and building a split's soft targets normalises each of its ten per question)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def _leave_one_out(pred: str, gts: list[str]) -> float:
    """Mean over the ten leave-one-out subsets of min(1, matches / 3)."""
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, g in enumerate(gts) if j != i and g == pred)
        accs.append(min(1.0, matches / 3))
    return sum(accs) / len(accs)


def vqa_accuracy(pred: str, answers: list[str], version: str = "official") -> float:
    """VQA accuracy of one prediction against the annotators' answers (in [0, 1]).

    ``official``: the 2021 ``vqaEval.py``: both sides normalised only when annotators
    disagree. ``legacy``: the pre-2021 one (EvalAI era): the prediction always normalised,
    the answers only de-punctuated, and only when they disagree.
    """
    if not answers:
        raise ValueError("VQA accuracy needs the annotators' answers; got none")
    if version == "official":
        gts = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
        pred = pred.replace("\n", " ").replace("\t", " ").strip()
        if len(set(gts)) > 1:
            gts = [process_digit_article(process_punctuation(g)) for g in gts]
            pred = process_digit_article(process_punctuation(pred))
    elif version == "legacy":
        gts = list(answers)
        pred = process_digit_article(process_punctuation(pred))
        if len(set(gts)) > 1:
            gts = [process_punctuation(g) for g in gts]
    else:
        raise ValueError(f"unknown VQA evaluation version {version!r}; use 'official' or 'legacy'")
    return _leave_one_out(pred, gts)


def vizwiz_accuracy(pred: str, answers: list[str]) -> float:
    """The VizWiz API's variant: prediction normalised, annotators' answers used raw.

    Some copies of that API write the apostrophes of their contractions as U+2019 or
    backticks; this uses straight ones, as the VQA tools do.
    """
    if not answers:
        raise ValueError("VizWiz accuracy needs the annotators' answers; got none")
    pred = pred.replace("\n", " ").replace("\t", " ").strip()
    pred = process_digit_article(process_punctuation(pred))
    return _leave_one_out(pred, list(answers))


def soft_scores(answers: list[str]) -> dict[str, float]:
    """VQA soft target of each distinct (normalised) answer: its leave-one-out accuracy."""
    norm = [normalize_answer(a) for a in answers]
    return {a: _leave_one_out(a, norm) for a in dict.fromkeys(norm)}


# --- classification --------------------------------------------------------------------
def accuracy(pred, gold) -> float:
    pred, gold = np.asarray(pred), np.asarray(gold)
    if pred.shape != gold.shape:
        raise ValueError(f"accuracy: predictions {pred.shape} and labels {gold.shape} differ in shape")
    return float((pred == gold).mean())


def multilabel_f1(y_true, y_prob, threshold: float = 0.5) -> dict[str, float]:
    """Micro and macro F1 of multi-hot labels (N, L) against probabilities thresholded at 0.5.

    Macro averages over the L columns given (pass only the real labels); a label with no
    true and no predicted positive counts F1 = 0, as scikit-learn does.
    """
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_prob) > threshold
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"multilabel_f1: labels {y_true.shape} and scores {y_pred.shape} "
                         "must both be (examples, labels)")
    tp = (y_true & y_pred).sum(0)
    fp = (~y_true & y_pred).sum(0)
    fn = (y_true & ~y_pred).sum(0)
    denom = 2 * tp + fp + fn
    per_label = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = 2 * tp.sum() / micro_denom if micro_denom else 0.0
    return {"micro_f1": float(micro), "macro_f1": float(per_label.mean())}


# --- the official VQA 2.0 file formats -------------------------------------------------
def _require(obj, keys, where: str):
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")


def evaluate_vqa_files(questions: Path, annotations: Path, results: Path,
                       version: str = "official") -> dict:
    """Score a results file in the official VQA 2.0 formats, as ``vqaEval.py`` reports it."""
    qs = read_json(questions, "questions")
    _require(qs, ["questions"], f"questions file {questions}")
    anns = read_json(annotations, "annotations")
    _require(anns, ["annotations"], f"annotations file {annotations}")
    res = read_json(results, "results")
    if not isinstance(res, list):
        raise ValueError(f"results file {results}: expected a JSON list of "
                         '{"question_id": int, "answer": str}')
    question_ids = set()
    for i, q in enumerate(qs["questions"]):
        _require(q, ["question_id", "image_id", "question"], f"questions file {questions}, entry {i}")
        question_ids.add(q["question_id"])
    gts = {}
    for i, a in enumerate(anns["annotations"]):
        where = f"annotations file {annotations}, entry {i}"
        _require(a, ["question_id", "answers", "answer_type", "question_type"], where)
        if not a["answers"]:
            raise ValueError(f"{where}: 'answers' is empty")
        for j, ans in enumerate(a["answers"]):
            _require(ans, ["answer"], f"{where}, answer {j}")
        if a["question_id"] not in question_ids:
            raise ValueError(f"{where}: question {a['question_id']} is not in the questions file")
        gts[a["question_id"]] = a
    preds = {}
    for i, r in enumerate(res):
        _require(r, ["question_id", "answer"], f"results file {results}, entry {i}")
        if r["question_id"] in preds:
            raise ValueError(f"results file {results}, entry {i}: question {r['question_id']} "
                             "is answered twice")
        preds[r["question_id"]] = r["answer"]
    missing, extra = set(gts) - set(preds), set(preds) - set(gts)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} annotated question(s) have no result, "
                         f"e.g. {sorted(missing)[:5]}")
        if extra:
            parts.append(f"{len(extra)} result(s) are for unknown questions, e.g. {sorted(extra)[:5]}")
        raise ValueError(f"results file {results} does not cover the annotations: " + "; ".join(parts))
    per_q = {qid: vqa_accuracy(preds[qid], [x["answer"] for x in a["answers"]], version)
             for qid, a in gts.items()}
    by_type: dict[str, dict[str, list[float]]] = {"perAnswerType": defaultdict(list),
                                                   "perQuestionType": defaultdict(list)}
    for qid, a in gts.items():
        by_type["perAnswerType"][a["answer_type"]].append(per_q[qid])
        by_type["perQuestionType"][a["question_type"]].append(per_q[qid])
    pct = lambda xs: round(100 * sum(xs) / len(xs), 2)  # noqa: E731
    return {"overall": pct(list(per_q.values())),
            **{k: {t: pct(v) for t, v in sorted(d.items())} for k, d in by_type.items()},
            "questions": len(per_q)}


# --- captions ---------------------------------------------------------------------------
def caption_words(text: str) -> str:
    """Lower-cased words without punctuation, what COCO's PTB tokenizer hands its scorers
    (the tokenizer itself needs Java)."""
    return " ".join(re.findall(r"[a-z0-9]+|'[a-z]+", text.lower()))     # "dog's" → "dog 's"


def caption_scores(references: dict[str, list[str]], captions: dict[str, str]) -> dict[str, float]:
    """Corpus BLEU-4 and CIDEr-D (pycocoevalcap, as the COCO caption evaluation computes them)
    of one caption per image against that image's references, in percent."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    missing = sorted(set(references) - set(captions))
    if missing or set(captions) - set(references):
        raise ValueError(f"captions and references cover different images (e.g. {missing[:3]})")
    if any(not refs for refs in references.values()):
        raise ValueError("an image has no reference caption")
    gts = {k: [caption_words(t) for t in refs] for k, refs in references.items()}
    res = {k: [caption_words(captions[k])] for k in references}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": 100 * float(bleu[3]), "cider": 100 * float(cider)}
