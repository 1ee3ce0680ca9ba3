"""Build a week's slide deck into one self-contained HTML file (offline, no CDN).

A deck is ``slides/<week>/slides.md``: Markdown, slides separated by a line ``---``.
An image written ``![caption](figure:NAME)`` is drawn by ``mi_course.course.figures.<weekNN>.NAME()``
(a function returning a matplotlib Figure, computed from the zoo model) and embedded as PNG.
Arrow keys / space / click move between slides; ``p`` prints all slides.
"""

from __future__ import annotations

import base64
import importlib
import io
import re
from pathlib import Path

import mistune

from mi_course.errors import InputError

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{margin:0;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f6f7f9;color:#1f2933}}
section{{display:none;box-sizing:border-box;width:100vw;height:100vh;padding:4vh 7vw;overflow:auto;background:#fff}}
section.on{{display:block}}
h1{{font-size:2.4em;margin-top:20vh}} h2{{font-size:1.8em;border-bottom:3px solid #2563eb;padding-bottom:.2em}}
li,p,td,th{{font-size:1.25em;line-height:1.45}} code{{background:#eef2ff;padding:0 .2em;border-radius:3px}}
img{{max-width:100%;max-height:62vh;display:block;margin:1em auto}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #cbd2d9;padding:.3em .7em}} blockquote{{color:#52606d;border-left:4px solid #cbd2d9;margin-left:0;padding-left:1em}}
#n{{position:fixed;right:1em;bottom:.7em;color:#9aa5b1;font-size:.9em}}
@media print{{section{{display:block;height:auto;page-break-after:always}} #n{{display:none}}}}
</style></head><body>
{slides}
<div id="n"></div>
<script>
var s=document.querySelectorAll('section'),i=0;
function go(k){{i=Math.max(0,Math.min(s.length-1,k));s.forEach(function(e,j){{e.className=j==i?'on':''}});
document.getElementById('n').textContent=(i+1)+' / '+s.length;location.hash=i+1}}
document.onkeydown=function(e){{if(['ArrowRight','PageDown',' '].indexOf(e.key)>=0)go(i+1);
if(['ArrowLeft','PageUp'].indexOf(e.key)>=0)go(i-1);if(e.key=='p')window.print()}};
document.body.onclick=function(e){{if(e.target.tagName!='A')go(i+1)}};
go((parseInt(location.hash.slice(1))||1)-1);
</script></body></html>
"""


def _figure_png(week: str, name: str) -> str:
    mod_name = f"mi_course.course.figures.week{week[:2]}"
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as err:
        raise InputError(f"slides of {week} use figure:{name}, but {mod_name} does not exist") from err
    fn = getattr(mod, name, None)
    if fn is None:
        raise InputError(f"slides of {week} use figure:{name}, but {mod_name} has no function {name}()")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import torch

    with torch.no_grad():  # figures only read the models; methods that need gradients switch them on
        fig = fn()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render(week: str, markdown_text: str) -> str:
    """The deck's HTML from its Markdown source (figures computed on the fly)."""
    md = mistune.create_markdown(plugins=["table", "strikethrough"])
    parts = [p.strip() for p in re.split(r"^---\s*$", markdown_text, flags=re.M) if p.strip()]
    if not parts:
        raise InputError(f"slides for {week} are empty")
    sections = []
    for part in parts:
        part = re.sub(r"\]\(figure:([A-Za-z_][A-Za-z0-9_]*)\)",
                      lambda m: "](" + _figure_png(week, m.group(1)) + ")", part)
        sections.append(f"<section>{md(part)}</section>")
    title = re.search(r"^#\s+(.+)$", markdown_text, flags=re.M)
    return _TEMPLATE.format(title=title.group(1) if title else week, slides="\n".join(sections))


def build(week: str, out: Path | None = None, course=None) -> Path:
    """Build ``slides/<week>/slides.md`` into ``slides/<week>/<week>.html`` (or ``out``).

    ``course``: a :class:`mi_course.course.model.Course` (default: :func:`~mi_course.course.model.find_course`)."""
    from mi_course.course.model import find_course

    src = (course or find_course()).slides_dir(week) / "slides.md"
    if not src.exists():
        raise InputError(f"no deck at {src}")
    html = render(week, src.read_text())
    out = Path(out) if out else src.with_name(f"{week}.html")
    out.write_text(html)
    return out
