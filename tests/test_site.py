"""The documentation site: built strictly, its reference current, and rendered in a real browser.

``mkdocs build --strict`` fails on a warning: a broken link, a docstring reference to nothing
(``docs/tooling/roles.py``), a docstring parameter not in the signature. The browser test serves the built
site on 127.0.0.1 and opens it in headless Chromium (Debian's ``chromium``, no network), then checks the
rendered text of the home page, of ``SoftPromptWrapper``'s reference page and of a search; screenshots go to
``$SOFTPROMPT_ARTIFACTS`` (default ``.artifacts/``) as the test's artefacts. Under ``CI`` a missing
``mkdocs``, Playwright or Chromium fails instead of skipping.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "tooling"))  # docs/tooling is no package
import reference  # noqa: E402

ARTIFACTS = Path(os.environ.get("SOFTPROMPT_ARTIFACTS", REPO / ".artifacts"))


def _need(what: str) -> None:
    message = f"{what} is not installed (pip install -e '.[docs]'; apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _mkdocs(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        _need("mkdocs")
    exe = str(Path(sys.executable).parent / "mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _mkdocs("build", "--strict", "--site-dir", str(out))
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    return out


def test_reference_pages_are_current() -> None:
    """The reference pages and their nav are what docs/tooling/reference.py writes (rerun it after an API change)."""
    stale = [str(p.relative_to(REPO)) for p, text in reference.expected_files().items()
             if not p.is_file() or p.read_text() != text]  # fmt: skip
    written = set(reference.expected_files())
    extra = [
        str(p.relative_to(REPO)) for p in (REPO / "docs" / "reference").rglob("*.md") if p not in written
    ]
    assert not stale and not extra, f"run python docs/tooling/reference.py (stale: {stale}, extra: {extra})"


def test_site_builds_strictly(site: Path) -> None:
    index = (site / "reference" / "api" / "SoftPromptWrapper.html").read_text()
    assert "softprompt.SoftPromptWrapper.predict" in index  # each method has its anchor
    assert (site / "search" / "search_index.json").is_file()  # searched in the browser, no server side


def test_a_broken_page_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "quickstart.md"
    page.write_text(page.read_text() + "\nSee [the wrapper][softprompt.NoSuchWrapper].\n")
    done = _mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"), cwd=tmp_path)
    assert done.returncode != 0
    assert "softprompt.NoSuchWrapper" in done.stderr


def test_a_broken_docstring_reference_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A Sphinx role naming nothing warns (so --strict fails); one naming a public object becomes a link."""
    import griffe
    import roles

    module = griffe.visit(
        "softprompt.core.task", filepath=REPO / "softprompt" / "core" / "task.py",
        code='def f():\n    """Like :func:`~softprompt.train_prompt`, not :class:`softprompt.NoSuchThing`."""\n',
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.softprompt.roles"):
        roles.SphinxRoles()._walk(module)
    assert "[`train_prompt`][softprompt.train_prompt]" in module["f"].docstring.value
    assert any("softprompt.NoSuchThing" in r.getMessage() for r in caplog.records)


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _need("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def _page(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(url)
    return page, failed


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def test_home_page_renders(browser, served: str) -> None:  # type: ignore[no-untyped-def]
    page, failed = _page(browser, f"{served}/index.html")
    text = page.inner_text("article")
    assert "Prompt tuning for any Hugging Face encoder" in text
    assert "API reference" in page.inner_text("nav.md-nav--primary")
    assert not failed, f"requests that failed (the site must be self-contained): {failed}"
    _shot(page, "site-home.png")


def test_wrapper_reference_renders(browser, served: str) -> None:  # type: ignore[no-untyped-def]
    page, failed = _page(browser, f"{served}/reference/api/SoftPromptWrapper.html")
    text = page.inner_text("article")
    assert "SoftPromptWrapper" in page.inner_text("article h1")
    for expected in ("Wrap a Hugging Face encoder", "tokenizer", "Raises", "predict", "save_pretrained"):
        assert expected in text, expected
    assert page.locator("table").count() > 0  # parameters rendered as tables
    assert not failed, failed
    _shot(page, "site-softpromptwrapper.png")


def test_search_finds_from_pretrained(browser, served: str) -> None:  # type: ignore[no-untyped-def]
    page, failed = _page(browser, f"{served}/index.html")
    page.fill("input.md-search__input", "from_pretrained")
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    results = page.inner_text(".md-search-result")
    assert "from_pretrained" in results and "SoftPromptWrapper" in results
    assert not failed, failed
    _shot(page, "site-search-from_pretrained.png")
