"""Drives the dashboard in a real browser for tests/dashboard.rs.

Debian's Chromium, driven by Playwright, loads the page the stats service
serves and reads what it shows. The test (in Rust) holds the truth, from
GetSummary over gRPC, and makes the writes; this script only looks. They
talk in JSON lines: each line on stdin is a command, and each answer is
one line on stdout.

Commands:
  {"show": "park=parks/baoding"}  picks the scope in the page's own form
  {"wait_revision": 41}           waits until the page shows revision >= 41
  {"figures": true}               the summary figures the page shows
  {"charts": true}                each chart's marks, and the marks with no
                                  figure written beside them
  {"phone": true}                 reloads at a phone's size: whether the
                                  page is wider than the screen
  {"screenshot": "PATH"}          saves what the browser shows
  {"quit": true}
"""

import argparse
import json
import sys

from playwright.sync_api import sync_playwright

TIMEOUT_MS = 60_000

# As root Chromium needs --no-sandbox; the rest keeps it from reaching for
# Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def answer(value):
    print(json.dumps(value), flush=True)


def settled(page):
    """Waits until the page shows figures and no chart is loading."""
    page.wait_for_function(
        "() => document.querySelector('#figures [data-field]') !== null"
        " && document.body.dataset.pending === '0'",
        timeout=TIMEOUT_MS,
    )


def figures(page):
    return page.eval_on_selector_all(
        "#figures [data-field]",
        "items => Object.fromEntries(items.map(i => [i.dataset.field, i.querySelector('dd').dataset.value]))",
    )


def charts(page):
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.chart')].map(chart => {
            const marks = [...chart.querySelectorAll('g.bar, g.column, g.band, g.node')];
            // A mark reads without colour when a figure is written beside it;
            // columns too crowded to label carry it in their title.
            const unlabelled = marks.filter(g =>
                !g.querySelector('text.figure, text.label') && !(g.querySelector('title')?.textContent ?? '').includes(':'));
            return [chart.id, {marks: marks.length, unlabelled: unlabelled.length,
                               empty: chart.querySelector('.empty')?.textContent ?? null,
                               error: chart.querySelector('.error')?.textContent ?? null}];
        }))"""
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(args.url, timeout=TIMEOUT_MS)
        settled(page)
        answer({"ready": True})
        for line in sys.stdin:
            command = json.loads(line)
            if "show" in command:
                kind, _, value = command["show"].partition("=")
                page.select_option("#kind", kind)
                if value:
                    page.fill("#value", value)
                page.click("#scope button[type=submit]")
                # The figures say which scope they are of; the charts are
                # settled when no load is pending.
                page.wait_for_function(
                    "want => document.querySelector('#figures').dataset.scope === want"
                    " && document.body.dataset.pending === '0'",
                    arg=command["show"],
                    timeout=TIMEOUT_MS,
                )
                answer({"shown": command["show"]})
            elif "wait_revision" in command:
                # The charts redraw at each revision: they are settled
                # when no load is pending.
                page.wait_for_function(
                    "want => BigInt(document.querySelector('#revision').dataset.value ?? '0') >= BigInt(want)"
                    " && document.body.dataset.pending === '0'",
                    arg=str(command["wait_revision"]),
                    timeout=TIMEOUT_MS,
                )
                answer({"revision": int(page.eval_on_selector("#revision", "e => e.dataset.value"))})
            elif "figures" in command:
                answer(figures(page))
            elif "charts" in command:
                answer(charts(page))
            elif "phone" in command:
                page.set_viewport_size({"width": 390, "height": 844})
                page.reload(timeout=TIMEOUT_MS)
                settled(page)
                wide = page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
                answer({"wider_than_screen": wide})
                page.set_viewport_size({"width": 1280, "height": 900})
            elif "screenshot" in command:
                settled(page)
                page.screenshot(path=command["screenshot"], full_page=True)
                answer({"saved": command["screenshot"]})
            elif "quit" in command:
                answer({"errors": errors})
                break
        browser.close()


if __name__ == "__main__":
    main()
