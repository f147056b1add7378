"""Textual domains: how a scene is talked about.

Each domain is a mixture of *forms* (captions, VQA questions, VizWiz questions, alt-text,
statements, plots) and a few knobs on how much detail and noise the language carries.
Forms are mixed by weight, so two textual domains can be interpolated. Text is generated
from a scene's ground truth, so the language is grounded in what the regions show.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .ontology import (CATEGORIES, COLOURS, GENRES, NEAR_COLOURS, NUMBER_WORDS, SIZES, STUFF,
                       SUPERCATEGORIES, SUPERCATEGORY_OF, plural)
from .visual import Scene, SceneObject

FORMS = ("caption", "question", "vizwiz_question", "alttext", "statement", "plot")


@dataclass(frozen=True)
class TextDomain:
    name: str
    forms: tuple[tuple[str, float], ...]   # (form, weight): which kinds of text, how often
    attribute_prob: float     # how often colour / size are named
    relation_prob: float      # how often a spatial relation is named
    hypernym_prob: float      # super-category instead of the category ("an animal")
    noise_prob: float         # web boilerplate inserted
    drop_prob: float          # words dropped (terse, broken text)
    agreement: float          # VQA-like answers: probability an annotator gives the true answer

    def draw_form(self, rng: random.Random) -> str:
        names, weights = zip(*self.forms)
        return rng.choices(names, weights=weights)[0]


def interpolate_text(a: TextDomain, b: TextDomain, t: float) -> TextDomain:
    """A fraction ``t`` of the way from ``a`` to ``b``: forms mixed by weight, knobs linearly."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolation weight must be in [0, 1], got {t}")
    weights: dict[str, float] = {}
    for dom, share in ((a, 1 - t), (b, t)):
        total = sum(w for _, w in dom.forms)
        for form, w in dom.forms:
            weights[form] = weights.get(form, 0.0) + share * w / total
    lerp = lambda x, y: (1 - t) * x + t * y  # noqa: E731
    return TextDomain(
        name=f"{a.name}~{b.name}@{t:.2f}",
        forms=tuple((f, w) for f, w in weights.items() if w > 0),
        attribute_prob=lerp(a.attribute_prob, b.attribute_prob),
        relation_prob=lerp(a.relation_prob, b.relation_prob),
        hypernym_prob=lerp(a.hypernym_prob, b.hypernym_prob),
        noise_prob=lerp(a.noise_prob, b.noise_prob),
        drop_prob=lerp(a.drop_prob, b.drop_prob),
        agreement=lerp(a.agreement, b.agreement))


# --- vocabulary of the world's language ------------------------------------------------
STATES = {
    "person": ("standing", "sitting", "walking", "smiling"),
    "animal": ("sitting", "standing", "lying down", "running"),
    "vehicle": ("parked", "driving", "waiting"),
    "food": ("on a plate", "on a table", "ready to eat"),
    "furniture": ("in a room", "by the wall"),
    "item": ("lying around", "on display"),
}
PLACE_OF_STUFF = {"sky": "outside", "wall": "in a room", "grass": "on the grass",
                  "road": "on the street", "floor": "indoors", "water": "near the water",
                  "tree": "in a park", "building": "in the city"}
WEB_NOISE = ("stock photo", "royalty free", "high quality", "concept", "closeup", "beautiful",
             "for sale", "template", "editorial use", "vector", "illustration", "hd wallpaper")
NEUTRAL_CLAUSES = ("waiting for a friend", "on a holiday", "after work", "for the first time",
                   "on a sunday", "before the storm", "for a birthday", "during the summer")
NAMES = ("anna", "jack", "maria", "tom", "lena", "sam", "kate", "omar", "lucy", "ben", "nina", "leo")
PLOT_FILLER = ("the story follows {name}", "years later everything changes for {name}",
               "{name} returns home after a long time away", "{name} meets an old friend",
               "nothing is what it seems", "{name} must make a choice", "the town keeps a secret",
               "{name} leaves the city", "a letter arrives for {name}")
# Words that mark each genre in plots (the poster carries the genre too, see domains.py).
GENRE_WORDS = {
    "Drama": ("family", "loss", "struggle", "life"), "Comedy": ("funny", "mishap", "prank", "wedding"),
    "Romance": ("love", "heart", "kiss", "couple"), "Thriller": ("chase", "danger", "secret", "escape"),
    "Crime": ("murder", "detective", "heist", "police"), "Action": ("fight", "explosion", "mission", "hero"),
    "Adventure": ("journey", "treasure", "island", "quest"), "Horror": ("haunted", "terror", "blood", "curse"),
    "Documentary": ("interviews", "footage", "history", "real"), "Mystery": ("clue", "disappearance", "riddle", "stranger"),
    "Sci-Fi": ("space", "robot", "future", "planet"), "Fantasy": ("magic", "dragon", "kingdom", "spell"),
    "Family": ("kids", "holiday", "parents", "home"), "Biography": ("true", "career", "legend", "born"),
    "War": ("soldier", "battle", "army", "front"), "History": ("empire", "century", "king", "revolution"),
    "Music": ("band", "song", "concert", "singer"), "Animation": ("cartoon", "animated", "talking", "colorful"),
    "Musical": ("dance", "stage", "songs", "broadway"), "Western": ("cowboy", "sheriff", "desert", "ranch"),
    "Sport": ("team", "coach", "championship", "match"), "Short": ("brief", "moment", "sketch", "minutes"),
    "Film-Noir": ("shadows", "femme", "fatale", "cigarette"),
}


# --- phrases ---------------------------------------------------------------------------
def _name(obj: SceneObject, d: TextDomain, rng: random.Random) -> str:
    cat = CATEGORIES[obj.category]
    return SUPERCATEGORY_OF[cat] if rng.random() < d.hypernym_prob else cat


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def noun_phrase(obj: SceneObject, d: TextDomain, rng: random.Random, article: str = "a") -> str:
    """"a large red dog", "dog", "an animal": attributes and hypernyms by the domain's knobs."""
    words = [_name(obj, d, rng)]
    if rng.random() < d.attribute_prob:
        words.insert(0, COLOURS[obj.colour])
    if rng.random() < d.attribute_prob * 0.4:
        words.insert(0, SIZES[obj.size])
    return _a(" ".join(words)) if article == "a" else " ".join(words)


def relation(a: SceneObject, b: SceneObject) -> str:
    """Spatial relation of ``a`` to ``b`` from their box centres (image y grows downwards)."""
    (ax, ay), (bx, by) = a.centre, b.centre
    if abs(ax - bx) < 0.08 and abs(ay - by) < 0.08:
        return "next to"
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def place(scene: Scene, rng: random.Random) -> str:
    return PLACE_OF_STUFF[STUFF[rng.choice(scene.stuff)]] if scene.stuff else "in the picture"


def _state(obj: SceneObject, rng: random.Random) -> str:
    return rng.choice(STATES[SUPERCATEGORY_OF[CATEGORIES[obj.category]]])


def _degrade(text: str, d: TextDomain, rng: random.Random) -> str:
    words = [w for w in text.split() if rng.random() >= d.drop_prob] or text.split()[:1]
    if rng.random() < d.noise_prob:
        words.insert(rng.randrange(len(words) + 1), rng.choice(WEB_NOISE))
    return " ".join(words)


# --- forms -----------------------------------------------------------------------------
def caption(scene: Scene, d: TextDomain, rng: random.Random) -> str:
    """A fluent description of one to three objects, grounded in the scene."""
    objs = scene.objects
    if not objs:
        return _degrade(f"a blurry view {place(scene, rng)}", d, rng)
    a = rng.choice(objs)
    same = scene.count(a.category)
    if same > 1 and rng.random() < 0.5:
        count = NUMBER_WORDS[same] if same < len(NUMBER_WORDS) else "many"
        text = f"{count} {plural(CATEGORIES[a.category])} {place(scene, rng)}"
    elif len(objs) > 1 and rng.random() < d.relation_prob:
        b = rng.choice([o for o in objs if o is not a])
        text = f"{noun_phrase(a, d, rng)} {_state(a, rng)} {relation(a, b)} {noun_phrase(b, d, rng)}"
    elif len(objs) > 1 and rng.random() < 0.5:
        b = rng.choice([o for o in objs if o is not a])
        text = f"{noun_phrase(a, d, rng)} and {noun_phrase(b, d, rng)} {place(scene, rng)}"
    else:
        text = f"{noun_phrase(a, d, rng)} {_state(a, rng)} {place(scene, rng)}"
    return _degrade(text, d, rng)


def alttext(scene: Scene, d: TextDomain, rng: random.Random) -> str:
    """Web alt-text: terse, often hypernymised, with boilerplate."""
    if not scene.objects:
        return _degrade(f"{rng.choice(WEB_NOISE)} {rng.choice(STUFF)} background", d, rng)
    a = rng.choice(scene.objects)
    np_ = noun_phrase(a, d, rng, article=rng.choice(["a", ""]))
    template = rng.choice(("{np} on {stuff} background", "{np} isolated on white",
                           "stock photo of {np}", "{np} in the {stuff}", "image may contain {np}",
                           "{np} and {np2}", "vector illustration of {np}"))
    np2 = noun_phrase(rng.choice(scene.objects), d, rng, article="")
    stuff = STUFF[rng.choice(scene.stuff)] if scene.stuff else rng.choice(STUFF)
    return _degrade(template.format(np=np_, np2=np2, stuff=stuff), d, rng)


@dataclass
class Question:
    text: str
    answers: list[str]        # ten annotators
    answer_type: str          # "yes/no" | "number" | "other" | "unanswerable"


def _annotate(truth: str, confusions: list[str], variants: dict[str, list[str]],
              agreement: float, rng: random.Random) -> list[str]:
    """Ten annotators: most give the truth, some a confusable answer; surface forms vary."""
    out = []
    for _ in range(10):
        ans = truth if (rng.random() < agreement or not confusions) else rng.choice(confusions)
        forms = variants.get(ans)
        out.append(rng.choice(forms) if forms and rng.random() < 0.2 else ans)
    return out


def _number_variants(k: int) -> dict[str, list[str]]:
    return {str(k): [NUMBER_WORDS[k]] if k < len(NUMBER_WORDS) else []}


def vqa_question(scene: Scene, d: TextDomain, rng: random.Random) -> Question:
    """A VQA-like question with ten annotator answers (yes/no, number and other types)."""
    yes_no = {"yes": ["Yes", "yes."], "no": ["No", "no."]}
    if not scene.objects:
        return Question("is there anything in the picture?",
                        _annotate("no", ["yes"], yes_no, d.agreement, rng), "yes/no")
    a = rng.choice(scene.objects)
    cat = CATEGORIES[a.category]
    kind = rng.choice(("colour", "count", "exists", "is_colour", "what_rel", "what_kind", "size"))
    if kind == "colour":
        c = COLOURS[a.colour]
        others = [COLOURS[o.colour] for o in scene.objects if o.category == a.category and o is not a]
        return Question(f"what color is the {cat}?",
                        _annotate(c, others + [NEAR_COLOURS[c]], {}, d.agreement, rng), "other")
    if kind == "count":
        k = scene.count(a.category)
        return Question(f"how many {plural(cat)} are there?",
                        _annotate(str(k), [str(k + 1), str(max(k - 1, 0))],
                                  _number_variants(k), d.agreement, rng), "number")
    if kind == "exists":
        asked = rng.randrange(len(CATEGORIES)) if rng.random() < 0.5 else a.category
        truth = "yes" if scene.count(asked) else "no"
        return Question(f"is there {_a(CATEGORIES[asked])} in the picture?",
                        _annotate(truth, ["no" if truth == "yes" else "yes"], yes_no, d.agreement, rng),
                        "yes/no")
    if kind == "is_colour":
        asked = a.colour if rng.random() < 0.5 else rng.randrange(len(COLOURS))
        truth = "yes" if asked == a.colour else "no"
        return Question(f"is the {cat} {COLOURS[asked]}?",
                        _annotate(truth, ["no" if truth == "yes" else "yes"], yes_no, d.agreement, rng),
                        "yes/no")
    if kind == "what_rel" and len(scene.objects) > 1:
        b = rng.choice([o for o in scene.objects if o is not a])
        truth = CATEGORIES[b.category]
        sibling = rng.choice(SUPERCATEGORIES[SUPERCATEGORY_OF[truth]])
        return Question(f"what is {relation(b, a)} the {cat}?",
                        _annotate(truth, [sibling], {truth: [f"a {truth}"]}, d.agreement, rng), "other")
    if kind == "size":
        truth = SIZES[a.size]
        return Question(f"is the {cat} small or large?",
                        _annotate(truth, [SIZES[1 - a.size]], {}, d.agreement, rng), "other")
    sup = SUPERCATEGORY_OF[cat]
    return Question(f"what kind of {sup} is this?",
                    _annotate(cat, [rng.choice(SUPERCATEGORIES[sup]), sup], {cat: [f"a {cat}"]},
                              d.agreement, rng), "other")


def vizwiz_question(scene: Scene, d: TextDomain, rng: random.Random) -> Question:
    """A blind user's question; unanswerable when the subject is missing, cut off or blurred."""
    subject = rng.choice(scene.objects) if scene.objects else None
    answerable = subject is not None and scene.blur < 0.6 and subject.visible > 0.4
    cat = CATEGORIES[subject.category] if subject else rng.choice(CATEGORIES)
    kind = rng.choice(("what", "colour", "kind"))
    if kind == "what":
        text = rng.choice(("what is this?", "can you tell me what this is?", "what is in this picture?"))
        truth, confusions = (cat, [rng.choice(CATEGORIES)]) if subject else ("", [])
    elif kind == "colour":
        text = f"what color is this {cat}?"
        truth = COLOURS[subject.colour] if subject else ""
        confusions = [NEAR_COLOURS[truth]] if subject else []
    else:
        sup = SUPERCATEGORY_OF[cat]
        text = f"what kind of {sup} is this?"
        truth, confusions = (cat, [rng.choice(SUPERCATEGORIES[sup])]) if subject else ("", [])
    if answerable:
        answers = _annotate(truth, confusions, {}, d.agreement, rng)
    else:
        answers = _annotate("unanswerable", [truth] if truth else [], {}, 0.8, rng)
    # as in VizWiz, the answer type follows what most annotators said
    majority = max(set(answers), key=lambda a: (answers.count(a), a))
    return Question(text, answers, "unanswerable" if majority == "unanswerable" else "other")


STATEMENT_LABELS = ("entailment", "neutral", "contradiction")


def statement(scene: Scene, label: str, d: TextDomain, rng: random.Random) -> str:
    """A hypothesis about the image that the image entails, leaves open, or contradicts."""
    if label not in STATEMENT_LABELS:
        raise ValueError(f"unknown statement label {label!r}; expected one of {STATEMENT_LABELS}")
    objs = scene.objects
    if not objs:
        true, false = "the picture shows nothing in particular", f"there is a {rng.choice(CATEGORIES)}"
    else:
        a = rng.choice(objs)
        cat = CATEGORIES[a.category]
        kind = rng.choice(("colour", "count", "relation", "exists"))
        if kind == "colour":
            wrong = rng.choice([c for i, c in enumerate(COLOURS) if i != a.colour])
            true, false = f"the {cat} is {COLOURS[a.colour]}", f"the {cat} is {wrong}"
        elif kind == "count":
            k = scene.count(a.category)
            words = lambda n: NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else "many"  # noqa: E731
            true = f"there are {words(k)} {plural(cat)}" if k > 1 else f"there is one {cat}"
            false = f"there are {words(k + 1)} {plural(cat)}"
        elif kind == "relation" and len(objs) > 1:
            b = rng.choice([o for o in objs if o is not a])
            rel = relation(a, b)
            flipped = {"to the left of": "to the right of", "to the right of": "to the left of",
                       "above": "below", "below": "above", "next to": "far from"}[rel]
            true = f"a {cat} is {rel} a {CATEGORIES[b.category]}"
            false = f"a {cat} is {flipped} a {CATEGORIES[b.category]}"
        else:
            absent = [c for i, c in enumerate(CATEGORIES) if not scene.count(i)]
            true, false = f"there is {_a(cat)}", f"there is {_a(rng.choice(absent))}"
    if label == "entailment":
        text = true
    elif label == "neutral":
        text = f"{true} {rng.choice(NEUTRAL_CLAUSES)}"
    else:
        text = false if rng.random() < 0.5 else f"{false} {rng.choice(NEUTRAL_CLAUSES)}"
    return _degrade(text, d, rng)


def plot(scene: Scene, d: TextDomain, rng: random.Random, genre_strength: float = 0.5) -> str:
    """A long synopsis: filler sentences, genre-marked sentences, and what the poster shows."""
    name = rng.choice(NAMES)
    sentences = []
    for _ in range(rng.randint(3, 5)):      # ~30 tokens: long next to a caption, cheap to train on
        if scene.genres and rng.random() < genre_strength:
            words = GENRE_WORDS[GENRES[rng.choice(scene.genres)]]
            sentences.append(f"{name} is caught in a {rng.choice(words)} of {rng.choice(words)}")
        elif scene.objects and rng.random() < 0.3:
            sentences.append(f"{name} finds {noun_phrase(rng.choice(scene.objects), d, rng)}")
        else:
            sentences.append(rng.choice(PLOT_FILLER).format(name=name))
    return _degrade(" . ".join(sentences) + " .", d, rng)


def describe(scene: Scene, d: TextDomain, rng: random.Random) -> str:
    """One text about the scene in a form drawn from the domain (pretraining and the corpus).

    Questions become "question [SEP] answer" with one annotator's answer, as in VQA-P;
    statements are entailed ones.
    """
    form = d.draw_form(rng)
    if form in ("question", "vizwiz_question"):
        q = (vqa_question if form == "question" else vizwiz_question)(scene, d, rng)
        return f"{q.text} [SEP] {rng.choice(q.answers)}"
    if form == "statement":
        return statement(scene, "entailment", d, rng)
    if form == "plot":
        return plot(scene, d, rng)
    return caption(scene, d, rng) if form == "caption" else alttext(scene, d, rng)
