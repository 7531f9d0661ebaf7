"""Sphinx extension of the book: the site as readers use it.

* Figures: a notebook figure's image gets its caption's text as alt text (myst-nb would give it the
  image's file path), so a screen reader reads what the figure shows. No notebook is edited.
* Metadata: every page has a description and OpenGraph tags (``og:title``, ``og:description``,
  ``og:type``, ``og:site_name``), from the page's title and the ``book_description`` setting; and a
  single viewport tag (Sphinx's layout, docutils and the theme each wrote one).
* The whole-book PDF: when ``make pdf`` has written ``_build/pdf/book.pdf`` (setting ``book_pdf``),
  the html build ships it as ``book.pdf`` and every page's download menu links it; without it, no
  page links a PDF (so the link is never broken). ``make test`` builds the PDF before the site.
* Pages: every script is included once (sphinx-thebe registers its inline configuration twice, which
  is a console error on every page); the theme starts in a valid colour mode (an empty one is a
  console error); the site has a favicon (a missing one is a failed request on every page).

The browser test (``tests_site/test_browser.py``, ``make test-site``) checks all of it in Chromium.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _caption_text(figure: nodes.figure) -> str:
    caption = next(iter(figure.findall(nodes.caption)), None)
    return " ".join(caption.astext().split()) if caption is not None else ""


def _alt_from_caption(app: Sphinx, doctree, docname: str) -> None:
    """Give every figure's images the caption as alt text, unless the author wrote one."""
    for figure in doctree.findall(nodes.figure):
        text = _caption_text(figure)
        for image in figure.findall(nodes.image):
            alt = image.get("alt", "")
            if alt and alt != image.get("uri") and "/" not in alt:
                continue  # an alt text written by the author
            if text:
                image["alt"] = text
            else:
                logger.warning(f"a figure without a caption has no alt text: {image.get('uri')}",
                               location=figure)


def _theme_defaults(app: Sphinx, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")  # the theme's colour mode, read from html_context
    config.html_context = context


VIEWPORT = re.compile(r'\s*<meta name="viewport"[^>]*>')


def _metadata(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    description = app.config.book_description
    if not description:
        logger.warning("book_description is not set: pages have no description metadata")
        return
    title = re.sub(r"<[^>]+>", "", context.get("title") or "") or app.config.html_title or app.config.project
    tags = {"description": description}
    og = {"og:title": title, "og:description": description, "og:type": "book" if pagename == app.config.root_doc
          else "article", "og:site_name": app.config.html_title or app.config.project}
    lines = [f'<meta name="{k}" content="{html.escape(v, quote=True)}" />' for k, v in tags.items()]
    lines += [f'<meta property="{k}" content="{html.escape(v, quote=True)}" />' for k, v in og.items()]
    context["metatags"] = VIEWPORT.sub("", context.get("metatags", "")) + "\n    " + "\n    ".join(lines)


INLINE_SCRIPT = re.compile(r"\n?[ \t]*<script>[^<]*</script>")


def _keep_first(text: str, pattern: re.Pattern, same=lambda match: match.group(0).strip()) -> str:
    """``text`` without the repeats of the matches of ``pattern`` that are the ``same`` (the first
    of each is kept)."""
    seen: set[str] = set()

    def once(match: re.Match) -> str:
        tag = same(match)
        if tag in seen:
            return ""
        seen.add(tag)
        return match.group(0)

    return pattern.sub(once, text)


def _head_once(app: Sphinx, exception) -> None:
    """Each page's head with one viewport tag (the templates of Sphinx and of the theme both write
    one) and every inline script once (sphinx-thebe and sphinx-togglebutton register theirs twice;
    a repeated ``const`` is a SyntaxError in the console)."""
    if exception is not None or app.builder.format != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        head_end = text.find("</head>")
        if head_end < 0:
            continue
        head = _keep_first(_keep_first(text[:head_end], VIEWPORT, lambda match: "viewport"), INLINE_SCRIPT)
        if head != text[:head_end]:
            path.write_text(head + text[head_end:], encoding="utf-8")


def _pdf(app: Sphinx) -> Path | None:
    pdf = Path(app.srcdir) / app.config.book_pdf
    return pdf if app.builder.name == "html" and pdf.is_file() else None


def _ship_pdf(app: Sphinx) -> None:
    pdf = _pdf(app)
    if pdf is None:
        logger.info("no whole-book PDF to link (make pdf writes it)")
        return
    staging = Path(app.outdir).parent / "pdf-extra"
    staging.mkdir(parents=True, exist_ok=True)
    link = staging / "book.pdf"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(pdf.resolve())
    app.config.html_extra_path = list(app.config.html_extra_path) + [str(staging)]


def _link_pdf(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    if _pdf(app) is None:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append({"type": "link", "url": context["pathto"]("book.pdf", 1),
                                     "text": "whole book (.pdf)", "icon": "fas fa-file-pdf",
                                     "label": "download-book-pdf-button",
                                     "tooltip": "Download the whole book as a PDF (without solutions)"})


def _check_pdf_shipped(app: Sphinx, exception) -> None:
    if exception is None and _pdf(app) is not None and not (Path(app.outdir) / "book.pdf").is_file():
        logger.warning("the pages link book.pdf, but it is not in the built site")


def _singlehtml_handlers(app: Sphinx) -> None:
    """The single-page build (make pdf) renders nodes as the html build does: extensions register
    some node handlers (myst-nb's hidden cells, sphinx-jupyterbook-latex's table-of-contents marker)
    for the html builder only, and Sphinx looks them up by builder name first."""
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    for node_name, pair in handlers.get("html", {}).items():
        handlers.setdefault("singlehtml", {}).setdefault(node_name, pair)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _singlehtml_handlers)
    app.add_config_value("book_description", "", "html", [str])
    app.add_config_value("book_pdf", "_build/pdf/book.pdf", "html", [str])
    app.connect("builder-inited", _ship_pdf)
    app.connect("html-page-context", _link_pdf, priority=503)  # after the theme's buttons (501)
    app.connect("build-finished", _check_pdf_shipped)
    app.connect("html-page-context", _metadata)
    app.connect("build-finished", _head_once)
    app.connect("config-inited", _theme_defaults)
    app.connect("doctree-resolved", _alt_from_caption)  # after myst-nb renders the outputs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
