"""The named points of the world: the paper's image sources and ways of talking.

These numbers are the world's knobs. None of them says which pretraining set should win:
they only set how scenes look and how text reads in each source.
"""
from __future__ import annotations

import numpy as np

from .ontology import COLOURS, GENRES, SUPERCATEGORIES
from .text import TextDomain
from .visual import VisualDomain

#                        supercategory weights: person animal vehicle food furniture item
VISUAL_DOMAINS: dict[str, VisualDomain] = {d.name: d for d in (
    # everyday scenes: a few objects among background stuff. More objects make "the dog" a
    # binding problem that small models do not learn within a CPU budget (3-8 objects: no
    # VQA-P gain on VQA-D; 1-3: +7 points on a seed-7 world, +1 to +3 on the seed-0 small
    # world; see docs/evidence.md, "Calibration")
    VisualDomain("coco", 1, 3, (1.2, 1.0, 1.0, 1.0, 0.8, 1.0), camera=0.0, noise=0.3,
                 blur=0.05, crop=0.1, empty=0.0, stuff=2.0, object_scale=0.25),
    # people-centred scenes, close to COCO (SNLI-VE's images)
    VisualDomain("flickr", 2, 6, (3.0, 1.0, 0.6, 0.4, 0.4, 0.6), camera=0.15, noise=0.3,
                 blur=0.05, crop=0.1, empty=0.0, stuff=2.0, object_scale=0.3),
    # web images: one or two salient objects, a shifted prior, another camera
    VisualDomain("cc", 1, 2, (0.6, 1.0, 1.2, 1.4, 1.2, 0.6), camera=0.7, noise=0.35,
                 blur=0.1, crop=0.05, empty=0.0, stuff=1.0, object_scale=0.45),
    # photos by blind users: blur, partial framing, subjects missing. A question is unanswerable
    # when its subject is missing, blurred (blur >= 0.6) or mostly out of frame; these rates
    # make 27 % of questions unanswerable, near VizWiz's 28 % (Gurari et al. 2018). They made
    # 53 % before GENERATOR_VERSION 6, so that "unanswerable" alone scored above half
    VisualDomain("vizwiz", 1, 2, (0.1, 0.2, 0.1, 1.5, 0.3, 3.0), camera=0.35, noise=0.5,
                 blur=0.7, crop=0.3, empty=0.05, stuff=2.0, object_scale=0.5),
    # movie posters: content set by the genres (see GENRE_LOOK)
    VisualDomain("poster", 2, 4, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0), camera=0.85, noise=0.3,
                 blur=0.0, crop=0.2, empty=0.0, stuff=1.0, object_scale=0.35),
)}

TEXT_DOMAINS: dict[str, TextDomain] = {d.name: d for d in (
    TextDomain("captions", (("caption", 1.0),), attribute_prob=0.6, relation_prob=0.5,
               hypernym_prob=0.05, noise_prob=0.0, drop_prob=0.0, agreement=0.9),
    TextDomain("vqa", (("question", 1.0),), attribute_prob=0.5, relation_prob=0.5,
               hypernym_prob=0.0, noise_prob=0.0, drop_prob=0.0, agreement=0.85),
    TextDomain("vizwiz", (("vizwiz_question", 1.0),), attribute_prob=0.3, relation_prob=0.1,
               hypernym_prob=0.1, noise_prob=0.0, drop_prob=0.0, agreement=0.7),
    TextDomain("alttext", (("alttext", 1.0),), attribute_prob=0.2, relation_prob=0.1,
               hypernym_prob=0.6, noise_prob=0.5, drop_prob=0.1, agreement=0.85),
    TextDomain("statements", (("statement", 1.0),), attribute_prob=0.5, relation_prob=0.5,
               hypernym_prob=0.0, noise_prob=0.0, drop_prob=0.0, agreement=0.9),
    TextDomain("plots", (("plot", 1.0),), attribute_prob=0.3, relation_prob=0.1,
               hypernym_prob=0.1, noise_prob=0.0, drop_prob=0.0, agreement=0.9),
    # the stand-in "BERT" corpus, text only: prose about every visual domain, as BERT's books
    # and Wikipedia are. No question-answer pairs: real BERT never saw VQA's, so the
    # question domain is what VQA-P pretraining brings (with them in the corpus, the BERT
    # stage had already learnt VQA's answer priors before any pretraining)
    TextDomain("broad", (("caption", 1.0), ("alttext", 1.0), ("statement", 1.0), ("plot", 0.5)),
               attribute_prob=0.4, relation_prob=0.3, hypernym_prob=0.2, noise_prob=0.2,
               drop_prob=0.05, agreement=0.85),
    # questions of both kinds, for the tokenizer's vocabulary only (see "broad")
    TextDomain("questions", (("question", 1.0), ("vizwiz_question", 0.5)), attribute_prob=0.4,
               relation_prob=0.3, hypernym_prob=0.1, noise_prob=0.0, drop_prob=0.0, agreement=0.85),
)}

# What a genre's poster tends to show: favoured super-categories and colours.
GENRE_LOOK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Drama": (("person", "furniture"), ("brown", "white")),
    "Comedy": (("person", "food"), ("yellow", "orange")),
    "Romance": (("person",), ("red", "white")),
    "Thriller": (("person", "vehicle"), ("black", "blue")),
    "Crime": (("vehicle", "item"), ("black", "red")),
    "Action": (("vehicle", "person"), ("red", "orange")),
    "Adventure": (("animal", "vehicle"), ("green", "brown")),
    "Horror": (("animal", "furniture"), ("black", "red")),
    "Documentary": (("animal", "food"), ("green", "white")),
    "Mystery": (("item", "furniture"), ("blue", "black")),
    "Sci-Fi": (("vehicle", "item"), ("blue", "white")),
    "Fantasy": (("animal",), ("green", "yellow")),
    "Family": (("person", "animal"), ("yellow", "green")),
    "Biography": (("person", "item"), ("brown", "white")),
    "War": (("vehicle", "person"), ("brown", "black")),
    "History": (("animal", "furniture"), ("brown", "yellow")),
    "Music": (("item", "person"), ("orange", "blue")),
    "Animation": (("animal", "food"), ("yellow", "orange")),
    "Musical": (("person", "furniture"), ("red", "yellow")),
    "Western": (("animal", "person"), ("brown", "orange")),
    "Sport": (("person", "item"), ("green", "blue")),
    "Short": (("item",), ("white", "black")),
    "Film-Noir": (("person", "item"), ("black", "white")),
}


def poster_priors(genres: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Category and colour priors of a poster: a base prior lifted by each genre's look."""
    supers = list(SUPERCATEGORIES)
    sw = np.full(len(supers), 0.3)
    cw = np.full(len(COLOURS), 0.3)
    for g in genres:
        favoured_supers, favoured_colours = GENRE_LOOK[GENRES[g]]
        for s in favoured_supers:
            sw[supers.index(s)] += 2.0 / len(genres)
        for c in favoured_colours:
            cw[COLOURS.index(c)] += 2.0 / len(genres)
    per_cat = np.concatenate([np.full(len(cs), w / len(cs)) for w, cs in zip(sw, SUPERCATEGORIES.values())])
    return per_cat / per_cat.sum(), cw / cw.sum()


def genre_prior() -> np.ndarray:
    """Zipf-like genre frequencies in MM-IMDB's order (Drama most frequent)."""
    w = 1.0 / np.arange(1, len(GENRES) + 1) ** 0.9
    return w / w.sum()
