"""Charts drawn on the server: small pieces of HTML and SVG that read at 360 px.

Each chart is a ``<figure>`` whose caption is its title and whose every figure is
also written out as text beside its bar (label, value, share), so the chart never
relies on colour alone; a page still puts a table with the same figures next to it
for readers who want to compare or copy them. Bars are SVG rectangles scaled with
``preserveAspectRatio="none"`` while the words stay HTML, so nothing shrinks to an
unreadable size on a phone. Colours come from classes in ``console.css``
(``.chart-c0`` to ``.chart-c7``, each at least 3:1 against white, WCAG 1.4.11); no
style attribute is written, so the pages' content security policy holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

# As many colours as the widest chart has parts (the eight places money can be).
COLOURS = 8

Format = Callable[[int], str]


def plain(value: int) -> str:
    """An integer with thousands separators (the default when no format is given)."""
    return f"{value:,}"


def _share(value: int, total: int) -> str:
    if total <= 0:
        return "0%"
    return f"{100 * value / total:.1f}%"


def _bar(width: float, colour: int, *, height: int = 1) -> str:
    """One horizontal bar, ``width`` in percent of the row."""
    width = max(0.0, min(100.0, width))
    return (
        f'<svg class="chart-bar" viewBox="0 0 100 {height}" preserveAspectRatio="none"'
        ' aria-hidden="true" focusable="false">'
        f'<rect class="chart-c{colour % COLOURS}" x="0" y="0" width="{width:.3f}"'
        f' height="{height}"/></svg>'
    )


def stacked_bar(
    segments: Sequence[tuple[str, int]], *, title: str, fmt: Format | None = None
) -> Markup:
    """One bar split into ``segments`` (label, value) in proportion, with a legend
    giving each part's value and share. Parts of zero stay in the legend (a reader
    asking "how much is held?" should see "0"); negative values are drawn as zero."""
    show = fmt or plain
    total = sum(max(0, value) for _, value in segments)
    rects, left = [], 0.0
    for index, (_, value) in enumerate(segments):
        if value <= 0 or total <= 0:
            continue
        width = 100 * value / total
        rects.append(
            f'<rect class="chart-c{index % COLOURS}" x="{left:.3f}" y="0"'
            f' width="{width:.3f}" height="1"/>'
        )
        left += width
    legend = "".join(
        f'<li><span class="chart-key chart-c{index % COLOURS}" aria-hidden="true"></span>'
        f"<span>{escape(label)}</span> <strong>{escape(show(value))}</strong>"
        f' <span class="chart-share">{_share(max(0, value), total)}</span></li>'
        for index, (label, value) in enumerate(segments)
    )
    return Markup(  # noqa: S704 (every word in it went through escape above)
        f'<figure class="chart chart-stacked"><figcaption>{escape(title)}</figcaption>'
        '<svg class="chart-bar chart-bar-tall" viewBox="0 0 100 1" preserveAspectRatio="none"'
        f' aria-hidden="true" focusable="false">{"".join(rects)}</svg>'
        f'<ul class="chart-legend">{legend}</ul></figure>'
    )


def bars(rows: Sequence[tuple[str, int]], *, title: str, fmt: Format | None = None) -> Markup:
    """Horizontal bars, one per row (label, value), scaled to the largest."""
    show = fmt or plain
    top = max((value for _, value in rows), default=0)
    total = sum(max(0, value) for _, value in rows)
    items = "".join(
        f'<li><span class="chart-label">{escape(label)}</span>'
        f"{_bar(100 * value / top if top > 0 else 0, 0)}"
        f'<span class="chart-value">{escape(show(value))}'
        f' <span class="chart-share">{_share(max(0, value), total)}</span></span></li>'
        for label, value in rows
    )
    return Markup(  # noqa: S704 (every word in it went through escape above)
        f'<figure class="chart chart-bars"><figcaption>{escape(title)}</figcaption>'
        f'<ul class="chart-rows">{items}</ul></figure>'
    )


def columns(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    fmt: Format | None = None,
) -> Markup:
    """Several series over the same ``labels`` (months, say): one group per label
    with a bar per series, all scaled to the largest value. Drawn as rows rather than
    upright columns so that a year of months still reads on a phone."""
    show = fmt or plain
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
    top = max((value for _, values in series for value in values), default=0)
    legend = "".join(
        f'<li><span class="chart-key chart-c{index % COLOURS}" aria-hidden="true"></span>'
        f"{escape(name)}</li>"
        for index, (name, _) in enumerate(series)
    )
    groups = []
    for position, label in enumerate(labels):
        lines = "".join(
            f'<li><span class="chart-label">{escape(name)}</span>'
            f"{_bar(100 * values[position] / top if top > 0 else 0, index)}"
            f'<span class="chart-value">{escape(show(values[position]))}</span></li>'
            for index, (name, values) in enumerate(series)
        )
        groups.append(
            f'<li><span class="chart-group">{escape(label)}</span>'
            f'<ul class="chart-rows">{lines}</ul></li>'
        )
    return Markup(  # noqa: S704 (every word in it went through escape above)
        f'<figure class="chart chart-columns"><figcaption>{escape(title)}</figcaption>'
        f'<ul class="chart-legend">{legend}</ul>'
        f'<ul class="chart-groups">{"".join(groups)}</ul></figure>'
    )
