"""Print the whole book to PDF: the single-page HTML build, in headless Chromium.

Usage (``make pdf`` runs it)::

    python -m tests_site.printpdf _build/singlehtml _build/pdf/book.pdf

The single-page build (``jupyter-book build --builder singlehtml``, which reuses the html build's
doctrees) holds every chapter, exercise page and the reference in one HTML page. Chromium loads it
from a local server, waits until MathJax has typeset every equation, and prints it through the
DevTools protocol (``Page.printToPDF``, A4, page numbers in the footer). The print style sheet of
``_static/book.css`` leaves out the solutions and the site's controls. Why Chromium and not LaTeX:
the "Running the notebooks" page, section "The book as a PDF".
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

from tests_site.browser import WAIT_FOR_MATHJAX, chromium, serve

FOOTER = ('<div style="font-size:8px; width:100%; text-align:center; color:#555;">'
          'Dropout, Verified &middot; <span class="pageNumber"></span> / <span class="totalPages"></span></div>')


def print_book(site: Path, pdf: Path) -> int:
    if not (site / "index.html").is_file():
        raise SystemExit(f"no single-page build in {site}: run jupyter-book build --builder singlehtml")
    # jupyter-book's index.html only redirects to the root page, which holds the whole book
    redirect = re.search(r'url=([^"\s]+)', (site / "index.html").read_text(encoding="utf-8"))
    page = redirect.group(1) if redirect else "index.html"
    with serve(site) as url, chromium(script_timeout=300) as driver:
        driver.get(f"{url}/{page}")
        state = driver.execute_async_script(WAIT_FOR_MATHJAX)
        if state not in ("typeset", "no math"):
            raise SystemExit(f"MathJax: {state}")
        for entry in driver.get_log("browser"):  # the site's own pages are checked by test_browser.py
            if entry["level"] == "SEVERE" and "searchindex.js" not in entry["message"]:  # no search in one page
                print(f"warning: console: {entry['message']}", file=sys.stderr)
        # Printing a few hundred pages takes minutes on a busy machine: wait for the driver that long.
        driver.command_executor.client_config.timeout = 900
        result = driver.execute_cdp_cmd("Page.printToPDF", {
            "paperWidth": 8.27, "paperHeight": 11.69,  # A4, in inches
            "marginTop": 0.6, "marginBottom": 0.7, "marginLeft": 0.6, "marginRight": 0.6,
            "printBackground": True, "displayHeaderFooter": True,
            "headerTemplate": "<span></span>", "footerTemplate": FOOTER,
            "generateDocumentOutline": True, "generateTaggedPDF": True,
        })
    data = base64.b64decode(result["data"])
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(data)
    return len(data)


if __name__ == "__main__":
    size = print_book(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]} ({size / 1e6:.1f} MB)")
