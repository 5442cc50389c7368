"""A Sphinx extension of the book: each page loads each script once.

sphinx-thebe adds its configuration script (``const THEBE_JS_URL = ...``) every time
Sphinx reads the documents, and under Sphinx 7 a build reads them more than once:
the page then declares the constant twice, and the browser's console reports
``Identifier 'THEBE_JS_URL' has already been declared``. Sphinx does not see the repeat
as one, since one copy names its file ``None`` and the other ``""``. This drops the repeats.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _key(script: Any) -> tuple:
    """What makes a script the same script: its file (``None`` and ``""`` both mean inline) and attributes."""
    attributes = getattr(script, "attributes", {})
    return getattr(script, "filename", str(script)) or None, tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _once(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    seen: set[tuple] = set()
    scripts = []
    for script in context.get("script_files", []):
        if _key(script) not in seen:
            seen.add(_key(script))
            scripts.append(script)
    context["script_files"] = scripts


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
