"""The one look of every page evserver draws itself: listings, error pages, the status page
and the `stats --html` report.

Owns: `CSS` (the colours, type and building blocks of www/, light and dark), `LOGO`,
`document()` (a page around its <main>), `csp()`, a share as text and bar (`share()`,
`bar()`) and a span of time in words (`duration()`). Imports nothing from evserver.

Everything is inline: a generated page fetches nothing, needs no script to be read, and
keeps its look when served from a root that has no www/ beside it. Callers escape what
they put in; this module only arranges it.
"""
from __future__ import annotations

import html

# The palette and type of www/css/style.css, minified; the dark scheme follows the system.
# Building blocks: .site-header/.brand/.tag, .card, .muted, .badge, tables (.kv key-value,
# .list columns), .none (an empty table's sentence), .facts (big numbers with their labels),
# .unit, .code (a status code coloured by class), .site-footer.
CSS = """
:root{--bg:#f7f8fc;--fg:#1f2433;--muted:#535b70;--card:#fff;--border:#dfe4ef;
--accent:#3553c9;--accent-soft:#e6ebfd;--ok:#0f7a53;--warn:#8a5a00;--bad:#b3261e;
--code-bg:#eef1f8;--shadow:0 6px 24px rgba(31,36,51,.08);--radius:14px;color-scheme:light}
@media (prefers-color-scheme:dark){:root{--bg:#12151e;--fg:#e7eaf3;--muted:#a9b1c7;
--card:#1b2030;--border:#2c3449;--accent:#8aa2ff;--accent-soft:#232c4a;--ok:#5ad19b;
--warn:#f2c14e;--bad:#ff8a80;--code-bg:#232a3d;--shadow:0 6px 24px rgba(0,0,0,.4);
color-scheme:dark}}
*,*::before,*::after{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
background:var(--bg);color:var(--fg);line-height:1.6;-webkit-text-size-adjust:100%}
a{color:var(--accent);text-underline-offset:.15em}
a:hover{text-decoration-thickness:2px}
:focus-visible{outline:3px solid var(--accent);outline-offset:3px;border-radius:4px}
h1,h2,h3{line-height:1.2}
code,pre,kbd,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",
monospace;font-size:.9em}
code{background:var(--code-bg);padding:.1em .35em;border-radius:5px}
.site-header,main,.site-footer{max-width:68rem;margin:0 auto;padding:1rem 1.5rem}
.site-header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem}
.brand{display:flex;align-items:center;gap:.6rem;margin-right:auto;font-weight:800;
font-size:1.3rem;color:var(--fg);text-decoration:none}
.brand svg{width:2.25rem;height:2.25rem;flex:none}
.brand .tag{font-weight:600;color:var(--muted)}
.site-header nav{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1.1rem;
font-weight:600}
.site-header nav a{color:var(--muted);text-decoration:none}
.site-header nav a:hover{color:var(--accent)}
main{padding-top:.5rem;min-width:0}
main h1{font-size:clamp(1.6rem,4vw,2.4rem);margin:.5rem 0 1rem;letter-spacing:-.02em;
overflow-wrap:anywhere}
main h2{font-size:1.15rem;margin:1.75rem 0 .6rem}
.muted{color:var(--muted);font-weight:400}
.badge{display:inline-block;padding:0 .6rem;border-radius:999px;font-size:.9rem}
.badge.ok{background:color-mix(in srgb,var(--ok) 15%,transparent);color:var(--ok)}
.badge.bad{background:color-mix(in srgb,var(--bad) 15%,transparent);color:var(--bad)}
.card{background:var(--card);border:1px solid var(--border);border-radius:var(--radius);
box-shadow:var(--shadow);padding:1.1rem 1.25rem;min-width:0}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.35rem 0;text-align:left;vertical-align:baseline;
border-bottom:1px solid var(--border)}
tr:last-child>th,tr:last-child>td{border-bottom:0}
caption{text-align:left;font-weight:600;font-size:.9rem;padding-bottom:.15rem}
.kv th{font-weight:400;color:var(--muted);padding-right:1rem}
.kv td{text-align:right;font-weight:600;white-space:nowrap}
.list th{font-size:.78rem;font-weight:600;text-transform:uppercase;letter-spacing:.05em;
color:var(--muted)}
.list th+th,.list td+td{text-align:right;padding-left:.75rem;white-space:nowrap}
.list td:first-child{overflow-wrap:anywhere}
.none{margin:.4rem 0 0;color:var(--muted);overflow-wrap:anywhere}
.facts{display:flex;flex-wrap:wrap;gap:.75rem 2.5rem;margin:0 0 1.5rem}
.facts div{min-width:0}
.facts dt{color:var(--muted);font-size:.8rem;font-weight:600;text-transform:uppercase;
letter-spacing:.06em}
.facts dd{margin:0;font-size:1.1rem;font-weight:600;font-variant-numeric:tabular-nums}
.unit{color:var(--muted);font-weight:400;font-size:.9rem}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-weight:600}
.code.ok{color:var(--ok)}.code.warn{color:var(--warn)}.code.bad{color:var(--bad)}
.code.info{color:var(--accent)}
.site-footer{margin-top:1rem;border-top:1px solid var(--border);color:var(--muted);
font-size:.9rem;text-align:center}
@media (max-width:30rem){.site-header,main,.site-footer{padding-left:1rem;padding-right:1rem}}
@media (prefers-reduced-motion:reduce){*{transition:none!important;animation:none!important}}
"""

# The mark of www/img/icon.svg, drawn inline so a page needs no image from the root.
LOGO = ('<svg viewBox="0 0 64 64" aria-hidden="true" focusable="false"><defs>'
        '<linearGradient id="logo-g" x1="0" y1="0" x2="1" y2="1">'
        '<stop offset="0" stop-color="#3a5bd9"/><stop offset="1" stop-color="#22b3a6"/>'
        '</linearGradient></defs>'
        '<rect x="2" y="2" width="60" height="60" rx="14" fill="url(#logo-g)"/>'
        '<circle cx="32" cy="32" r="16" fill="none" stroke="#fff" stroke-width="5" '
        'stroke-dasharray="76 25" stroke-linecap="round"/>'
        '<path d="M31 8 L31 24 L41 16 Z" fill="#fff"/>'
        '<circle cx="32" cy="32" r="4" fill="#ffd166"/></svg>')


def share(part: float, whole: float) -> str:
    """`94.9 %` of a whole (HTML); `< 0.1 %` and `> 99.9 %` rather than a rounded 0 or 100,
    which would say none or all; `–` when there is no whole."""
    if not whole:
        return "–"
    percent = 100 * part / whole
    if 0 < percent < 0.05:
        return "&lt; 0.1 %"
    return "&gt; 99.9 %" if 99.95 <= percent < 100 else f"{percent:.1f} %"


def duration(seconds: float) -> str:
    """A span of time in words, two units at most: 42 s, 5 min 12 s, 3 h 04 min, 2 d 3 h
    (whole seconds; a negative span is 0 s)."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days:,} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def bar(part: float, whole: float, kind: str = "") -> str:
    """A share drawn as a thin bar (`.bar`), for the eye only: the number is beside it.
    `kind` (ok, warn, bad…) colours it."""
    width = 100 * part / whole if whole else 0
    classes = f"bar {kind}" if kind else "bar"
    return (f'<span class="{classes}" aria-hidden="true"><span style="width:{width:.1f}%">'
            "</span></span>")


def csp(script_hash: str = "", connect: bool = False) -> str:
    """The pages' Content-Security-Policy: inline style, data: images, nothing fetched
    from elsewhere; one script allowed by its hash, and fetches of this origin, if asked."""
    parts = ["default-src 'none'", "style-src 'unsafe-inline'", "img-src data:"]
    if connect:
        parts.append("connect-src 'self'")
    if script_hash:
        parts.append(f"script-src 'sha256-{script_hash}'")
    parts += ["base-uri 'none'", "form-action 'none'"]
    return "; ".join(parts)


def document(title: str, main: str, *, tag: str, footer: str, css: str = "", nav: str = "",
             head: str = "", policy: str = "", before_main: str = "",
             after_main: str = "") -> str:
    """A whole page: the header (logo, "evserver", `tag`, then `nav`), `main` inside
    <main>, then the footer. `title` and `tag` are plain text (escaped here); `main`,
    `nav`, `footer`, `head` and the `before_main`/`after_main` markup are HTML the caller
    has escaped. `css` is appended to the shared CSS; `policy` replaces the default CSP."""
    label = html.escape(tag)
    navigation = f'<nav aria-label="{label}">{nav}</nav>' if nav else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy or csp()}">\n'
        f'<title>{html.escape(title)}</title>\n<link rel="icon" href="data:,">\n{head}'
        f'<style>{CSS}{css}</style></head>\n<body>\n'
        f'<header class="site-header"><span class="brand">{LOGO} evserver '
        f'<span class="tag">{label}</span></span>{navigation}</header>\n{before_main}'
        f'<main id="main">\n{main}\n</main>\n{after_main}'
        f'<footer class="site-footer"><p>{footer}</p></footer>\n</body></html>\n')
