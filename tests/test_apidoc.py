"""The API reference's docstring format (scripts/apidoc.py): docstrings are reStructuredText,
and pdoc's reStructuredText support leaves literal blocks (``Example::`` + an indented block) as
written; apidoc.py turns them into code blocks."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_apidoc():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import apidoc
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return apidoc


def test_literal_blocks_become_code_fences_as_rest_reads_them():
    convert = load_apidoc().rst_literal_blocks
    doc = ("Server::\n\n    async def f():\n        pass\n\n    f()\n\nAfter.\n\n"
           "Expanded form ::\n\n  x = 1\n\n::\n\n  y = 2\n\n.. note::\n   kept\n\nEnds with :: but no block.")
    assert convert(doc).split("\n") == [
        "Server:", "", "```python", "async def f():", "    pass", "", "f()", "```", "", "After.", "",
        "Expanded form", "", "```python", "x = 1", "```", "",
        "```python", "y = 2", "```", "",
        ".. note::", "   kept", "", "Ends with :: but no block."]


def test_built_page_shows_a_literal_block_as_code(tmp_path, monkeypatch):
    apidoc = load_apidoc()
    monkeypatch.setattr(apidoc, "PUBLIC_MODULES", ("socketiwa.h3.webtransport",))
    page = apidoc.build(tmp_path).parent / "socketiwa" / "h3" / "webtransport.html"
    html = page.read_text()
    module_doc = html[html.index('<div class="docstring">'):html.index('class="view-source-toggle')]
    assert "::" not in re.sub(r"<[^>]+>", "", module_doc)           # no reST marker left
    assert "<p>Server:</p>" in module_doc and "<p>Client:</p>" in module_doc
    code = module_doc[module_doc.index("<pre>"):module_doc.index("</pre>")]
    assert "on_session" in code and 'class="k">async</span>' in code  # highlighted as Python
