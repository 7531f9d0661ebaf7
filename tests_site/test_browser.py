"""The built site as a browser shows it: every page of ``_build/html`` in headless Chromium.

Run by ``make test-site`` after ``make html`` (``make test`` runs both); kept out of ``tests/`` so
that ``make test-lib`` does not collect it. The browser and its driver are the Debian packages
``chromium`` and ``chromium-driver`` (``make browser`` installs them); Selenium is pointed at
``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, so nothing is downloaded.

One browser loads every page at a desktop width (1400 px) and a phone width (390 px), served by a
local HTTP server, waits for MathJax's start-up promise (not a fixed sleep) and for every image, and
collects what each check finds. Each test then fails with the page and the element:

* no error in the browser console;
* every equation (``span.math``, ``div.math``) typeset by MathJax into exactly one element, no MathJax
  error, and no raw TeX (``\\(``, ``\\[``, ``$$``, ``\\begin{``, ``\\frac``) left in the text outside code;
* every image loaded (``naturalWidth > 0``) with alt text that is not empty and not a file path;
* no element reaching beyond the viewport unless it sits inside a horizontal scroll container;
* an inline equation scrolls sideways only when it is wider than its line (no needless scroll bar);
* a display equation's number does not overlap the equation;
* code and output lines do not wrap (a wrapped line reads as two statements): they scroll;
* one viewport tag, a description and OpenGraph title and description on every page; a single
  visible search field at desktop width (no second one in a header bar);
* the copy button copies a docstring example without its prompts and output lines;
* the offline search returns results for a term;
* the student-notebook link of every exercise page downloads a notebook.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests_site.browser import BrowserMissing, chromium, serve

SITE = Path(os.environ.get("BOOK_SITE", Path(__file__).resolve().parents[1] / "_build" / "html"))
WIDTHS = {"desktop": (1400, 900, False), "phone": (390, 844, True)}
SEARCH_TERM = "dropout"

# Runs in the page once it has loaded; `arguments[0]` is Selenium's callback.
PAGE_CHECKS = r"""
const done = arguments[arguments.length - 1];
(async () => {
  const found = {math: [], rawtex: [], images: [], overflow: [], eqno: [], wrap: [], head: [], mathscroll: [], counts: {}};
  const describe = (e) => {
    let s = e.tagName.toLowerCase();
    if (e.id) s += '#' + e.id;
    if (e.classList.length) s += '.' + [...e.classList].slice(0, 3).join('.');
    const text = (e.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60);
    return text ? `${s} "${text}"` : s;
  };
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  const maths = [...document.querySelectorAll('span.math, div.math')];
  found.counts.math = maths.length;
  if (maths.length) {
    for (let i = 0; i < 400 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
      await new Promise(r => setTimeout(r, 25));
    if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) found.math.push('MathJax did not load');
    else await MathJax.startup.promise;
  }
  for (const m of maths) {
    const n = m.querySelectorAll('mjx-container').length;
    if (n !== 1) found.math.push(`${describe(m)}: ${n} typeset elements instead of 1`);
    else if (m.querySelector('mjx-merror, [data-mjx-error]')) found.math.push(`${describe(m)}: MathJax error`);
  }
  for (const m of document.querySelectorAll('span.math')) {  // scrolls sideways only if the formula is wider
    const svg = m.querySelector('mjx-container svg');
    if (!svg || !m.checkVisibility()) continue;
    const room = Math.max(m.clientWidth, Math.ceil(svg.getBoundingClientRect().width));
    if (m.scrollWidth > room)
      found.mathscroll.push(`${describe(m)}: scrolls ${m.scrollWidth - m.clientWidth} px though the formula fits`);
  }
  const rawTex = /\\\(|\\\[|\$\$|\\begin\{|\\frac/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const p = t.parentElement;
    if (!p || p.closest('pre, code, script, style, textarea, mjx-container, .highlight')) continue;
    if (rawTex.test(t.data)) found.rawtex.push(`${describe(p)}: raw TeX "${t.data.trim().slice(0, 60)}"`);
  }
  const pathLike = /(^|\/)[^\s\/]+\.(png|svg|jpe?g|gif|webp)$|^\.\.?\/|^_images\//i;
  found.counts.images = document.images.length;
  for (const img of document.images) {
    const alt = (img.getAttribute('alt') || '').trim();
    if (!img.complete || img.naturalWidth === 0) found.images.push(`img ${img.getAttribute('src')}: not loaded`);
    if (!alt) found.images.push(`img ${img.getAttribute('src')}: no alt text`);
    else if (pathLike.test(alt)) found.images.push(`img ${img.getAttribute('src')}: alt text is a path ("${alt}")`);
  }
  const W = document.documentElement.clientWidth;
  const scrolls = (e) => /(auto|scroll)/.test(getComputedStyle(e).overflowX);
  const reported = new Set();
  for (const e of document.body.querySelectorAll('*')) {
    if (reported.has(e.parentElement)) { reported.add(e); continue; }
    // the parts of a typeset equation's SVG lie inside it: checking the <svg> and its container is enough
    if (e.parentElement && e.parentElement.closest('svg')) continue;
    if (e.closest('script, style, mjx-assistive-mml') || !e.checkVisibility({visibilityProperty: true})) continue;
    const r = e.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || (r.right <= W + 1 && r.left >= -1)) continue;
    let inScroller = false;
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a)) { const ar = a.getBoundingClientRect(); inScroller = ar.right <= W + 1 && ar.left >= -1; break; }
    }
    if (inScroller) continue;
    reported.add(e);
    if (found.overflow.length < 10)
      found.overflow.push(`${describe(e)}: spans ${Math.round(r.left)}..${Math.round(r.right)} px, viewport ${W} px`);
  }
  if (document.documentElement.scrollWidth > W + 1)
    found.overflow.push(`the page is ${document.documentElement.scrollWidth} px wide, viewport ${W} px`);
  for (const n of document.querySelectorAll('div.math span.eqno')) {
    const box = n.parentElement.querySelector('mjx-container'), eq = box && box.querySelector('svg');
    if (!eq) continue;
    const a = n.getBoundingClientRect(), s = eq.getBoundingClientRect(), c = box.getBoundingClientRect();
    const b = {left: Math.max(s.left, c.left), right: Math.min(s.right, c.right),  // the visible part
               top: Math.max(s.top, c.top), bottom: Math.min(s.bottom, c.bottom)};
    if (!(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top))
      found.eqno.push(`${describe(n.parentElement)}: the number ${n.textContent.trim()} is drawn over the equation`);
  }
  for (const pre of document.querySelectorAll('pre')) {
    if (!pre.checkVisibility()) continue;
    if (getComputedStyle(pre).whiteSpace !== 'pre') found.wrap.push(`${describe(pre)}: lines wrap (white-space: ${getComputedStyle(pre).whiteSpace})`);
  }
  const meta = (sel) => [...document.head.querySelectorAll(sel)].map(m => m.getAttribute('content') || '');
  if (meta('meta[name="viewport"]').length !== 1) found.head.push(`${meta('meta[name="viewport"]').length} viewport meta tags`);
  for (const sel of ['meta[name="description"]', 'meta[property="og:title"]', 'meta[property="og:description"]'])
    if (meta(sel).length !== 1 || !meta(sel)[0].trim()) found.head.push(`no single non-empty ${sel}`);
  const searchFields = [...document.querySelectorAll('.search-button-field, form.bd-search input')]
    .filter(e => e.checkVisibility({visibilityProperty: true}) && !e.closest('dialog'));
  if (window.innerWidth >= 1200 && !/search\.html$/.test(location.pathname) && searchFields.length > 1) found.head.push(`${searchFields.length} visible search fields`);
  return found;
})().then(done, (err) => done({error: String(err)}));
"""

STUDENT_LINK = r"""
const done = arguments[arguments.length - 1];
const a = document.querySelector('p.student-notebook a.download');
if (!a) { done('no student-notebook link'); }
else if (!a.hasAttribute('download')) { done(`${a.getAttribute('href')}: the link has no download attribute`); }
else fetch(a.href).then(r => r.ok ? r.json() : Promise.reject(`HTTP ${r.status}`))
  .then(nb => done(Array.isArray(nb.cells) && nb.cells.length ? null : `${a.getAttribute('href')}: not a notebook`),
        err => done(`${a.getAttribute('href')}: ${err}`));
"""


def _pages() -> list[str]:
    return sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
                  if not p.relative_to(SITE).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site in {SITE}: run `make html` first (or set BOOK_SITE)")
    with serve(SITE) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium() as driver:
            yield driver
    except BrowserMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="module")
def report(server, browser):
    """Every page at every width: {check: [failure, ...]}, plus how much each check saw."""
    failures: dict[str, list[str]] = {k: [] for k in ("console", "math", "rawtex", "images", "overflow",
                                                       "eqno", "wrap", "head", "mathscroll", "error")}
    seen = {"pages": 0, "math": 0, "images": 0}
    for width_name, (width, height, mobile) in WIDTHS.items():
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        for page in _pages():
            where = f"{page} at {width} px"
            for attempt in range(2):  # a page caught mid-navigation has no body yet: load it once more
                browser.get(f"{server}/{page}")
                found = browser.execute_async_script(PAGE_CHECKS)
                if "error" not in found:
                    break
            if "error" in found:
                failures["error"].append(f"{where}: the checks failed to run: {found['error']}")
                continue
            for key in failures:
                failures[key] += [f"{where}: {item}" for item in found.get(key, [])]
            for entry in browser.get_log("browser"):
                if entry["level"] == "SEVERE":
                    failures["console"].append(f"{where}: {entry['message']}")
            seen["pages"] += 1
            seen["math"] += found["counts"]["math"]
            seen["images"] += found["counts"]["images"]
    return failures, seen


def _assert_none(report, key, what):
    failures, _ = report
    assert not failures[key], f"{what} ({len(failures[key])}):\n" + "\n".join(failures[key][:40])


def test_every_page_was_checked(report):
    failures, seen = report
    _assert_none(report, "error", "pages whose checks did not run")
    assert seen["pages"] == 2 * len(_pages()) and len(_pages()) >= 30, seen
    assert seen["math"] > 500 and seen["images"] > 20, f"too little was checked to mean anything: {seen}"


def test_no_console_errors(report):
    _assert_none(report, "console", "console errors")


def test_every_equation_is_typeset(report):
    _assert_none(report, "math", "equations not typeset by MathJax")
    _assert_none(report, "rawtex", "raw TeX left in the text")


def test_every_image_loads_with_alt_text(report):
    _assert_none(report, "images", "images not loaded or without a real alt text")


def test_nothing_wider_than_the_viewport(report):
    _assert_none(report, "overflow", "elements beyond the viewport outside a horizontal scroll container")


def test_inline_equations_scroll_only_when_wider_than_the_line(report):
    _assert_none(report, "mathscroll", "inline equations with a scroll bar they do not need")


def test_equation_numbers_stay_readable(report):
    _assert_none(report, "eqno", "equation numbers drawn over their equation")


def test_code_lines_do_not_wrap(report):
    _assert_none(report, "wrap", "code or output blocks whose lines wrap")


def test_page_metadata_and_one_search_field(report):
    _assert_none(report, "head", "pages with missing or repeated metadata, or more than one search field")


def test_copy_button_strips_prompts_and_outputs(server, browser):
    browser.get(f"{server}/api.html")
    copied = browser.execute_script("""
        // Click the copy button of the first example with prompts and output lines, and keep the
        // text that the button hands to the clipboard (clipboard.js copies through execCommand).
        for (const pre of document.querySelectorAll('div.highlight pre')) {
          if (!/^>>> /m.test(pre.textContent) || !/^(?!>>> |\\.\\.\\. ).+/m.test(pre.textContent)) continue;
          const button = pre.parentElement.querySelector('button.copybtn');
          if (!button) return [pre.textContent, null];
          window.__copied = null;
          document.execCommand = () => {
            const e = document.activeElement;
            window.__copied = e && 'value' in e ? e.value : String(getSelection());
            return true;
          };
          button.click();
          return [pre.textContent, window.__copied];
        }
        return null;""")
    assert copied is not None, "api.html: no docstring example with prompts and output lines"
    shown, text = copied
    assert text is not None, "api.html: the example has no copy button"
    code = [line[4:] for line in shown.splitlines() if line.startswith((">>> ", "... "))]
    assert text.strip().splitlines() == [line.rstrip() for line in code], (shown, text)


def test_offline_search_finds_a_term(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/search.html?q={SEARCH_TERM}")
    WebDriverWait(browser, 30).until(  # Sphinx writes this summary once every result is listed
        lambda d: "found" in d.find_element(By.CSS_SELECTOR, "#search-results").text)
    results = browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
    assert len(results) >= 10, f"search.html?q={SEARCH_TERM}: {len(results)} results"
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"search.html: console errors {errors}"


def test_student_notebook_links_download(server, browser):
    pages = [p for p in _pages() if p.startswith("exercises/") and p.split("/")[-1][:2].isdigit()]
    assert len(pages) >= 12, pages
    problems = []
    for page in pages:
        browser.get(f"{server}/{page}")
        problem = browser.execute_async_script(STUDENT_LINK)
        if problem:
            problems.append(f"{page}: {problem}")
    assert not problems, "student-notebook links that do not download:\n" + "\n".join(problems)


