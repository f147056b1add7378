"""Metrics against hand-worked cases of the official evaluators, and F1 against scikit-learn."""
import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from vlstudy.cli import main
from vlstudy.metrics import (accuracy, multilabel_f1, normalize_answer, process_digit_article,
                             process_punctuation, soft_scores, vizwiz_accuracy, vqa_accuracy)

DOWN = ["down"] * 7 + ["at table", "skateboard", "table"]


def distinct_rest(k):
    return ["x"] * k + [f"other{i}" for i in range(10 - k)]


# (prediction, ten answers, official 2021, legacy pre-2021, VizWiz API), worked by hand
CASES = [
    ("down", DOWN, 1.0, 1.0, 1.0),
    ("table", DOWN, 0.3, 0.3, 0.3),
    ("Down", DOWN, 1.0, 1.0, 1.0),                       # normalised: annotators disagree
    ("skateboard", DOWN, 0.3, 0.3, 0.3),
    ("up", DOWN, 0.0, 0.0, 0.0),
    ("Yes", ["yes"] * 10, 0.0, 1.0, 1.0),                # unanimous: official compares raw
    ("yes.", ["yes"] * 10, 0.0, 1.0, 1.0),
    ("yes\n", ["yes"] * 10, 1.0, 1.0, 1.0),              # newline and tab are stripped first
    ("\tyes", ["yes"] * 10, 1.0, 1.0, 1.0),
    ("2", ["two"] * 4 + ["3"] * 6, 1.0, 0.0, 0.0),       # only official maps the GT's "two"
    ("two", ["two"] * 4 + ["3"] * 6, 1.0, 0.0, 0.0),     # legacy/VizWiz turn the prediction into "2"
    ("3", ["two"] * 4 + ["3"] * 6, 1.0, 1.0, 1.0),
    ("a dog", ["a dog"] * 4 + ["cat"] * 6, 1.0, 0.0, 0.0),
    ("dog", ["a dog"] * 4 + ["cat"] * 6, 1.0, 0.0, 0.0),
    ("t-shirt", ["t shirt"] * 2 + ["shirt"] * 8, 0.6, 0.6, 0.6),
    ("1,000", ["1000"] * 3 + ["1,000"] + ["many"] * 6, 1.0, 1.0, 0.9),
    ("dont know", ["don't know"] * 4 + ["no"] * 6, 1.0, 1.0, 1.0),
    ("none", ["0"] * 4 + ["1"] * 6, 1.0, 1.0, 1.0),      # "none" is the number 0
    ("The Dog!", ["dog"] * 4 + ["cat"] * 6, 1.0, 1.0, 1.0),
    ("red, white", ["red white"] * 3 + ["red"] * 7, 0.9, 0.9, 0.9),
    ("whats that", ["what's that"] * 4 + ["no"] * 6, 1.0, 1.0, 1.0),
    ("dog", ["Dog"] * 4 + ["cat"] * 6, 1.0, 0.0, 0.0),     # only official lower-cases the GT
    ("an apple", ["apple"] * 5 + ["pear"] * 5, 1.0, 1.0, 1.0),
    ("ten", ["10"] * 4 + ["9"] * 6, 1.0, 1.0, 1.0),
] + [("x", distinct_rest(k), acc, acc, acc) for k, acc in enumerate([0.0, 0.3, 0.6, 0.9, 1.0, 1.0])]


@pytest.mark.parametrize("pred,answers,official,legacy,vizwiz", CASES)
def test_vqa_accuracy_hand_worked(pred, answers, official, legacy, vizwiz):
    assert vqa_accuracy(pred, answers) == pytest.approx(official)
    assert vqa_accuracy(pred, answers, "legacy") == pytest.approx(legacy)
    assert vizwiz_accuracy(pred, answers) == pytest.approx(vizwiz)


def test_enough_hand_worked_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("text,punct,full", [
    ("t-shirt", "t shirt", "t shirt"),
    ("1,000", "1000", "1000"),
    ("dr. who?", "dr who ", "dr who"),
    ("3.5", "3.5", "3.5"),
    ("hot-dog / bun", "hot dog  bun", "hot dog bun"),
    ("(none)", " none ", "0"),
    ("man's", "man's", "man's"),
    ("The Two Dogs!", "The Two Dogs ", "2 dogs"),
    ("red, blue", "red blue", "red blue"),            # ", " occurs: the comma is deleted
    ("red,blue", "red blue", "red blue"),             # no space beside it: spaced out
    ("1,5 a-b", "15 ab", "15 ab"),                    # a digit-comma-digit deletes every mark
    ("a.b", "ab", "ab"),                              # a period not before a digit goes
    ("isnt it", "isnt it", "isn't it"),
    ("the cat's toy", "the cat's toy", "cat's toy"),
    ("Zero or ONE", "Zero or ONE", "0 or 1"),
])
def test_normalisation_rules(text, punct, full):
    assert process_punctuation(text) == punct
    assert process_digit_article(process_punctuation(text)) == full


def test_period_quirk_removes_at_most_32():
    assert process_punctuation("." * 40) == "." * 8


def test_leave_one_out_average_not_closed_form_shortcut():
    # 3 matches: 3 subsets keep 2 matches (2/3), 7 keep 3 (1): (3 * 2/3 + 7) / 10
    assert vqa_accuracy("x", distinct_rest(3)) == pytest.approx((3 * 2 / 3 + 7) / 10)


def test_soft_scores():
    s = soft_scores(DOWN)
    assert s == pytest.approx({"down": 1.0, "at table": 0.3, "skateboard": 0.3, "table": 0.3})
    assert soft_scores(["Two"] * 2 + ["2"] + ["3"] * 7) == pytest.approx({"2": 0.9, "3": 1.0})
    assert normalize_answer(" A Dog!\n") == "dog"


def test_bad_inputs():
    with pytest.raises(ValueError, match="answers"):
        vqa_accuracy("x", [])
    with pytest.raises(ValueError, match="version"):
        vqa_accuracy("x", ["x"], "v3")


@pytest.mark.parametrize("seed", range(8))
def test_multilabel_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.random((50, 23)) < rng.uniform(0.02, 0.4)
    p = rng.random((50, 23))
    got = multilabel_f1(y, p)
    pred = p > 0.5
    assert got["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert got["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="shape"):
        accuracy([0, 1], [0])


# --- the eval command on files in the official VQA 2.0 formats ---------------------------
def write_vqa_files(tmp_path, answers_by_q, results):
    qs = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {},
          "data_subtype": "val2014",
          "questions": [{"image_id": 1, "question": f"q{q}?", "question_id": q} for q in answers_by_q]}
    anns = {"info": {}, "license": {}, "data_subtype": "val2014", "data_type": "mscoco",
            "annotations": [{"question_type": "what color", "multiple_choice_answer": a[0],
                             "answers": [{"answer": x, "answer_confidence": "yes", "answer_id": i + 1}
                                         for i, x in enumerate(a)],
                             "image_id": 1, "answer_type": t, "question_id": q}
                            for q, (a, t) in answers_by_q.items()]}
    paths = {}
    for name, obj in (("questions", qs), ("annotations", anns), ("results", results)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return paths


def run_eval(paths, capsys):
    code = main(["eval", "vqa", "--questions", str(paths["questions"]), "--annotations",
                 str(paths["annotations"]), "--results", str(paths["results"])])
    out = capsys.readouterr()
    return code, out.out, out.err


GT = {10: (DOWN, "other"), 11: (["yes"] * 10, "yes/no"), 12: (["two"] * 4 + ["3"] * 6, "number")}


def test_eval_command(tmp_path, capsys):
    res = [{"question_id": 10, "answer": "table"}, {"question_id": 11, "answer": "yes"},
           {"question_id": 12, "answer": "2"}]
    code, out, _ = run_eval(write_vqa_files(tmp_path, GT, res), capsys)
    assert code == 0
    assert "Overall Accuracy is: 76.67" in out            # (0.3 + 1 + 1) / 3
    assert "other : 30.00" in out and "yes/no : 100.00" in out and "number : 100.00" in out


@pytest.mark.parametrize("results,message", [
    ("[{\"question_id\": 10, ", "malformed JSON at line 1"),
    ([{"question_id": 10, "answer": "down"}, {"question_id": 11, "answer": "yes"}],
     "1 annotated question(s) have no result, e.g. [12]"),
    ([{"question_id": 10, "answer": "down"}, {"question_id": 11, "answer": "yes"},
      {"question_id": 12, "answer": "2"}, {"question_id": 99, "answer": "2"}], "unknown questions, e.g. [99]"),
    ([{"question_id": 10}], "entry 0: missing field(s) ['answer']"),
    ({"question_id": 10, "answer": "x"}, "expected a JSON list"),
    ([{"question_id": 10, "answer": "a"}, {"question_id": 10, "answer": "b"}], "answered twice"),
])
def test_eval_command_broken_results(tmp_path, capsys, results, message):
    code, _, err = run_eval(write_vqa_files(tmp_path, GT, results), capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1          # one line, no traceback


def test_eval_command_broken_annotations(tmp_path, capsys):
    paths = write_vqa_files(tmp_path, GT, [])
    anns = json.loads(paths["annotations"].read_text())
    del anns["annotations"][1]["answers"]
    paths["annotations"].write_text(json.dumps(anns))
    code, _, err = run_eval(paths, capsys)
    assert code == 2
    assert "annotations.json, entry 1: missing field(s) ['answers']" in err
    paths["questions"].unlink()
    code, _, err = run_eval(paths, capsys)
    assert code == 2 and "questions file not found" in err
