"""What makes a figure unfit to show, found on the drawn figure itself.

Three defects a reader sees at once and a test can see too:
- two pieces of text whose drawn extents overlap (facet titles running into each other, tick
  labels colliding, a point's label over an axis tick);
- a label, tick, title or legend entry that holds one of the data's identifiers (``vqa_d``,
  ``visual_bert``, ``cc_small``, ``test_score``) instead of the paper's name (``sides``);
- a marker fully hidden behind another one, with no text in the figure saying that points
  coincide.

``defects(fig)`` lists them; ``plots.save_figure`` refuses a figure that has any when
``VLSTUDY_CHECK_FIGURES`` is set (the tests set it, so every notebook's figure is checked as the
smoke study draws it).
"""
from __future__ import annotations

import re

import numpy as np

from .sides import MODEL_NAMES, SOURCE_NAMES, TASK_NAMES

# the data's names that have a different display name, and the results' column names
RAW_NAMES = sorted({*MODEL_NAMES, *(k for k, v in SOURCE_NAMES.items() if k != v), *TASK_NAMES,
                    "test_score", "val_score", "test_log_likelihood", "val_log_likelihood", "mlm_loss",
                    "pretrained_on", "finetune_seed", "frozen_base", "arch",
                    "cc", "flickr", "poster"})              # image sources (plots.IMAGE_SOURCES)
_RAW = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, RAW_NAMES)) + r")(?![A-Za-z0-9_])")
# a text saying that some points are drawn on top of each other
COINCIDE_NOTE = re.compile(r"coincide|on top of|hidden behind", re.IGNORECASE)
_OVERLAP_TOLERANCE_PX = 1.0


def _texts(fig) -> list:
    """Every drawn, non-empty text artist of the figure: titles, labels, legends, annotations,
    suptitles, and the tick labels of ticks inside their axis's view (matplotlib keeps label
    artists for ticks it does not draw)."""
    fig.canvas.draw()
    ticks, drawn_ticks = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = (tick.label1, tick.label2)
                ticks.update(id(label) for label in labels)
                if ax.get_visible() and low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low):
                    drawn_ticks += [label for label in labels if label.get_visible()]
    from matplotlib.text import Text
    out = []
    for text in fig.findobj(match=Text):        # (a legend's TextArea wraps its Text: the Text counts)
        if id(text) in ticks or not text.get_visible() or not _inside_drawn_axes(text):
            continue
        out.append(text)
    unique = {id(t): t for t in out + drawn_ticks}          # an artist reachable twice counts once
    return [t for t in unique.values() if str(t.get_text()).strip()]


def _inside_drawn_axes(artist) -> bool:
    """Texts of an axes that is not drawn do not count."""
    axes = getattr(artist, "axes", None)
    return axes is None or axes.get_visible()


def raw_names(fig) -> list[str]:
    """Texts holding a data identifier: "'task = vqa_d' holds vqa_d"."""
    found = []
    for text in _texts(fig):
        words = str(text.get_text())
        hit = _RAW.search(words)
        if hit:
            found.append(f"text {words!r} holds the identifier {hit.group(1)!r}")
    return found


def overlapping_texts(fig) -> list[str]:
    """Pairs of texts whose drawn extents overlap by more than a pixel."""
    texts = _texts(fig)
    renderer = fig.canvas.get_renderer()
    boxes = []
    for text in texts:
        box = text.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            boxes.append((str(text.get_text()), box.expanded(1, 1).padded(-_OVERLAP_TOLERANCE_PX)))
    found = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (first, a), (second, b) = boxes[i], boxes[j]
            if a.overlaps(b):
                found.append(f"texts {first!r} and {second!r} overlap")
    return found


def _markers(fig) -> list[tuple[object, np.ndarray, float, tuple]]:
    """(axes, centre in display pixels, diameter in pixels, (face, edge) colour) of every drawn
    marker, in drawing order (later ones on top; axes drawn later, such as a twin, on top)."""
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    pixels_per_point = fig.dpi / 72
    marks = []
    for ax in fig.axes:
        artists = sorted((a for a in ax.get_children() if isinstance(a, (Line2D, PathCollection))),
                         key=lambda a: a.get_zorder())
        for artist in artists:
            if not artist.get_visible():
                continue
            if isinstance(artist, Line2D):
                if artist.get_marker() in (None, "None", "", " ") or artist.get_markersize() == 0:
                    continue
                xy = np.column_stack(artist.get_data()).astype(float)
                sizes = np.full(len(xy), artist.get_markersize())              # diameter in points
                colour = (tuple(np.round(to_rgba(artist.get_markerfacecolor()), 3)),
                          tuple(np.round(to_rgba(artist.get_markeredgecolor()), 3)))
                colours = [colour] * len(xy)
            else:
                xy = np.asarray(artist.get_offsets(), float)
                raw = np.asarray(artist.get_sizes(), float)                     # area in points²
                sizes = np.sqrt(np.resize(raw if raw.size else [36.0], len(xy)))
                faces, edges = artist.get_facecolors(), artist.get_edgecolors()
                faces = np.resize(faces, (len(xy), 4)) if len(faces) else np.zeros((len(xy), 4))
                edges = np.resize(edges, (len(xy), 4)) if len(edges) else faces
                colours = [(tuple(np.round(f, 3)), tuple(np.round(e, 3))) for f, e in zip(faces, edges)]
            xy = ax.transData.transform(xy) if len(xy) else xy
            marks += [(ax, p, s * pixels_per_point, c) for p, s, c in zip(xy, sizes, colours) if np.isfinite(p).all()]
    return marks


def hidden_markers(fig) -> list[str]:
    """Markers drawn wholly under a later one of another colour (two things shown as one), in
    axes with no text of their own saying that points coincide. Markers of one colour on top of
    each other (a box plot's equal outliers) show one thing."""
    noted = {id(t.axes) for t in _texts(fig) if COINCIDE_NOTE.search(str(t.get_text())) and t.axes is not None}
    marks = _markers(fig)
    found = []
    for i, (ax, centre, size, colour) in enumerate(marks):
        if id(ax) in noted:
            continue
        for _, other, other_size, other_colour in marks[i + 1:]:
            # covered: the later marker's disc holds all of this one's (any axes: a twin overlays its host)
            if other_colour != colour and np.hypot(*(centre - other)) + size / 2 <= other_size / 2 + 0.5:
                found.append(f"a marker at ({centre[0]:.0f}, {centre[1]:.0f}) px in axes {ax.get_title()!r} is "
                             "hidden behind another")
                break
    return found


def defects(fig) -> list[str]:
    """Everything above that the figure has, in words (empty: fit to show)."""
    return overlapping_texts(fig) + raw_names(fig) + hidden_markers(fig)
