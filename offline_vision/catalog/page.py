"""`ovision search --html`: the hits as one self-contained page of thumbnails.

No server and no network: the thumbnails are data: URLs and the page has no script. Paths come
from the catalog and the query from the user: both are escaped. An image gone from disk since it
was indexed keeps its row, without a thumbnail.
"""

from __future__ import annotations

import html
from pathlib import Path

from offline_vision.errors import OVisionError
from offline_vision.files import write_atomic
from offline_vision.images import data_url, load_image
from offline_vision.progress import bar as progress_bar

THUMB = 160  # px, the longer side

STYLE = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
#hits { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .8em; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .4em; }
img { max-width: 160px; max-height: 160px; display: block; margin: 0 auto .3em; }
figcaption { font-size: 12px; word-break: break-all; }
.missing { color: #b00; height: 3em; }"""


def _figure(rank: int, hit: dict) -> str:
    path = str(hit["image"])
    try:
        img = load_image(Path(path))
        img.thumbnail((THUMB, THUMB))
        picture = f'<img alt="" src="{data_url(img)}">'
    except (OVisionError, OSError):
        picture = '<div class="missing">not readable now</div>'
    return (
        f"<figure>{picture}<figcaption>{rank}. {hit['score']:.4f}<br>"
        f"{html.escape(path, quote=True)}</figcaption></figure>"
    )


def page(query: str, hits: list[dict]) -> str:
    """The whole page as one string: the query, then each hit's thumbnail, score and path."""
    q = html.escape(query, quote=True)
    with progress_bar(len(hits), "thumbnails", unit="img", min_total=200) as shown:
        figures = []
        for i, h in enumerate(hits, 1):
            figures.append(_figure(i, h))
            shown.update(1)
    body = "\n".join(figures)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>ovision search: {q}</title>
<style>
{STYLE}
</style>
</head>
<body>
<h1>{q}</h1>
<p>{len(hits)} nearest images, best first, with their cosine.</p>
<div id="hits">
{body}
</div>
</body>
</html>
"""


def write(query: str, hits: list[dict], out: Path) -> Path:
    write_atomic(out, page(query, hits))
    return out
