"""look.py: the one look of the pages evserver draws (the pages themselves are checked in a
browser by tests/e2e/test_generated_pages.py)."""
from __future__ import annotations

import re

import pytest

from evserver import look


def test_a_document_escapes_its_title_and_tag_and_places_its_parts() -> None:
    page = look.document("<b>x</b> & y", "<p>main</p>", tag="<tag>", footer="foot",
                         css=".extra{}", nav='<a href="?a">A</a>', head="<!-- head -->",
                         before_main="<p>before</p>", after_main="<p>after</p>")
    assert "<title>&lt;b&gt;x&lt;/b&gt; &amp; y</title>" in page
    assert '<span class="tag">&lt;tag&gt;</span>' in page
    assert '<nav aria-label="&lt;tag&gt;"><a href="?a">A</a></nav>' in page
    order = ["<!-- head -->", "<style>", ".extra{}</style>", '<header class="site-header">',
             "<p>before</p>", '<main id="main">\n<p>main</p>\n</main>', "<p>after</p>",
             '<footer class="site-footer"><p>foot</p></footer>']
    places = [page.index(part) for part in order]
    assert places == sorted(places)
    assert page.startswith("<!doctype html>") and page.endswith("</body></html>\n")


def test_a_document_fetches_nothing_and_runs_nothing_by_default() -> None:
    page = look.document("t", "", tag="t", footer="")
    policy = re.search(r'Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None and policy.group(1) == look.csp()
    assert "script-src" not in look.csp() and "connect-src" not in look.csp()
    assert "default-src 'none'" in look.csp() and "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_a_policy_allows_one_script_by_its_hash_and_fetches_of_this_origin() -> None:
    policy = look.csp("abc=", connect=True)
    assert "script-src 'sha256-abc='" in policy and "connect-src 'self'" in policy


def test_the_look_has_a_light_and_a_dark_scheme_of_the_same_variables() -> None:
    light = re.search(r":root\{([^}]*)\}", look.CSS)
    dark = re.search(r"prefers-color-scheme:dark\)\{:root\{([^}]*)\}", look.CSS)
    assert light is not None and dark is not None
    names = re.compile(r"(--[a-z-]+):")
    # Every colour is redefined for the dark scheme; only the corner radius is shared.
    assert set(names.findall(light.group(1))) - {"--radius"} == set(names.findall(dark.group(1)))


@pytest.mark.parametrize(("part", "whole", "text"), [
    (0, 0, "–"), (0, 10, "0.0 %"), (1, 10_000, "&lt; 0.1 %"), (5, 10_000, "0.1 %"),
    (9_999, 10_000, "&gt; 99.9 %"), (9_995, 10_000, "&gt; 99.9 %"), (10, 10, "100.0 %"),
    (1, 3, "33.3 %")])
def test_a_share_is_never_rounded_to_none_or_all(part: int, whole: int, text: str) -> None:
    assert look.share(part, whole) == text


def test_a_bar_is_as_wide_as_its_share_and_hidden_from_screen_readers() -> None:
    assert look.bar(1, 4) == ('<span class="bar" aria-hidden="true">'
                              '<span style="width:25.0%"></span></span>')
    assert look.bar(1, 0, "bad").startswith('<span class="bar bad"')
    assert 'width:0.0%' in look.bar(1, 0)


def test_the_frame_byte_for_byte() -> None:
    """What every generated page starts and ends with, by default: no nav, the default
    policy, nothing before or after <main>."""
    page = look.document("T", "<p>m</p>", tag="t", footer="f")
    assert page == (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
        '<title>T</title>\n<link rel="icon" href="data:,">\n'
        f"<style>{look.CSS}</style></head>\n<body>\n"
        f'<header class="site-header"><span class="brand">{look.LOGO} evserver '
        '<span class="tag">t</span></span></header>\n'
        '<main id="main">\n<p>m</p>\n</main>\n'
        '<footer class="site-footer"><p>f</p></footer>\n</body></html>\n')


def test_the_policies_byte_for_byte() -> None:
    assert look.csp() == ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                          "base-uri 'none'; form-action 'none'")
    assert look.csp("h=", connect=True) == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
        "script-src 'sha256-h='; base-uri 'none'; form-action 'none'")
    assert look.csp("h=") == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "script-src 'sha256-h='; base-uri 'none'; form-action 'none'")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (42.9, "42 s"), (312, "5 min 12 s"), (3725, "1 h 02 min"),
    (2 * 86400 + 3 * 3600 + 59, "2 d 3 h"), (1234 * 86400, "1,234 d 0 h"), (-5, "0 s")])
def test_a_duration_in_words(seconds: float, text: str) -> None:
    """An uptime on the status page, a log's span in the stats report."""
    assert look.duration(seconds) == text
