"""The shared semantics of the synthetic world.

Every visual and textual domain draws on these same categories, attributes and relations,
so what a model learns in one domain can transfer to another; domains differ only in which
scenes occur and how they are seen and described.
"""
from __future__ import annotations

# Super-category -> categories. Super-categories are the hypernyms that CC-like alt-text
# uses instead of the category ("an animal" for "a dog").
SUPERCATEGORIES: dict[str, tuple[str, ...]] = {
    "person": ("man", "woman", "child", "player"),
    "animal": ("dog", "cat", "horse", "bird", "cow", "sheep"),
    "vehicle": ("car", "bus", "bicycle", "truck", "boat", "train"),
    "food": ("pizza", "cake", "banana", "apple", "sandwich", "donut"),
    "furniture": ("chair", "table", "bed", "couch"),
    "item": ("bottle", "cup", "phone", "book", "laptop", "ball", "umbrella", "bag"),
}
CATEGORIES: tuple[str, ...] = tuple(c for cs in SUPERCATEGORIES.values() for c in cs)
CATEGORY_INDEX: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
SUPERCATEGORY_OF: dict[str, str] = {c: s for s, cs in SUPERCATEGORIES.items() for c in cs}
# The detector's label space: every category, then background (index len(CATEGORIES)).
DETECTOR_CLASSES: tuple[str, ...] = CATEGORIES + ("background",)
BACKGROUND = len(CATEGORIES)

PLURALS = {"man": "men", "woman": "women", "child": "children", "bus": "buses",
           "sheep": "sheep", "sandwich": "sandwiches", "couch": "couches"}


def plural(word: str) -> str:
    return PLURALS.get(word, word + "s")


COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow", "black", "white", "brown", "orange")
# Colours annotators confuse with each other: the source of realistic answer disagreement.
NEAR_COLOURS = {"red": "orange", "orange": "red", "blue": "green", "green": "blue",
                "yellow": "orange", "black": "brown", "white": "yellow", "brown": "black"}
SIZES: tuple[str, ...] = ("small", "large")
# Background "stuff" regions that detectors also propose; their detector class is background.
STUFF: tuple[str, ...] = ("sky", "wall", "grass", "road", "floor", "water", "tree", "building")

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# The 23 MM-IMDB genres in the dataset's frequency order (Drama most frequent).
GENRES: tuple[str, ...] = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
)
