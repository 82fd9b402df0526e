"""A throwaway Hugging Face Hub on 127.0.0.1 for tests: the real ``huggingface_hub`` client talks to it over HTTP.

Only what ``huggingface_hub`` 2.x sends for ``create_repo``, ``create_branch``, ``upload_folder`` and
``hf_hub_download`` is implemented, with the headers the client checks:

    POST /api/repos/create                          {"name", "organization", "visibility"} -> {"url"}; 409 if it exists
    POST /api/validate-yaml                         README.md front matter parsed as YAML; 400 {"errors"} if it is not
    POST /api/models/{repo}/branch/{branch}         {"startingPoint"?}; 409 if it exists
    POST /api/models/{repo}/preupload/{revision}    every file "regular" (no LFS/Xet), so files come inline in the commit
    POST /api/models/{repo}/commit/{revision}       ndjson: header, file (base64), deletedFile -> {"commitOid", "commitUrl"}
    GET  /api/models/{repo}/tree/{revision}         [{"type": "file", "path", "size", "oid"}] (for delete_patterns)
    HEAD /{repo}/resolve/{revision}/{filename}      X-Repo-Commit, ETag (git blob sha1), Content-Length
    GET  /{repo}/resolve/{revision}/{filename}      the bytes, same headers

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as the Hub's do, so
the client raises its usual exceptions. Given a token, writes need ``Authorization: Bearer <token>`` and a
private repo is invisible (404) without it. Every request is recorded in ``requests`` as ``(method, path)``, those for
endpoints it does not implement (answered 404) in ``unhandled``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from huggingface_hub import constants

__all__ = ["HubStandIn", "serving"]

API_REPO = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit|branch|tree)/(?P<rev>[^/]+)(?P<rest>/.*)?$"
)
RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def git_blob_sha1(data: bytes) -> str:
    """What the Hub uses as the ETag of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> {path: content}
    refs: dict[str, str] = field(default_factory=dict)  # branch -> oid

    def resolve(self, revision: str) -> str | None:
        return self.refs.get(revision) or (revision if revision in self.commits else None)


class HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict | None = None,
        body: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.headers, self.body = status, code, headers or {}, body or {}


class HubStandIn:
    """The stand-in Hub: ``with HubStandIn(token="hf_x") as hub: ... hub.url ...``.

    Example:
        >>> with HubStandIn(token="hf_test") as hub:  # doctest: +SKIP
        ...     HfApi(endpoint=hub.url, token="hf_test").create_repo("me/x")
    """

    def __init__(self, token: str | None = None, user: str = "me") -> None:
        self.token, self.user = token, user
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []  # requests for endpoints the stand-in does not implement
        self.lock = threading.Lock()
        self._commits = 0
        stand_in = self

        class Handler(_Handler):
            hub = stand_in

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="hub-stand-in", daemon=True)

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (what a clone would hold)."""
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.resolve(revision)])

    # ---------------------------------------------------------------- what the endpoints do

    def repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def commit_of(self, repo: Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid

    def _new_commit(self, repo: Repo, files: dict[str, bytes], summary: str) -> str:
        self._commits += 1
        oid = hashlib.sha1(f"{self._commits}:{summary}:{sorted(files)}".encode()).hexdigest()
        repo.commits[oid] = files
        return oid

    def create_repo(self, body: dict) -> dict:
        repo_id = f"{body.get('organization') or self.user}/{body['name']}"
        if repo_id in self.repos:
            # the Hub names the existing repo; create_repo(exist_ok=True) reads it
            raise HubError(409, "You already created this model repo", body={"url": f"{self.url}/{repo_id}"})
        repo = Repo(private=body.get("visibility") == "private")
        repo.refs["main"] = self._new_commit(
            repo, {".gitattributes": b"*.safetensors filter=lfs\n"}, "initial"
        )
        self.repos[repo_id] = repo
        return {"url": f"{self.url}/{repo_id}"}

    def commit(self, repo: Repo, repo_id: str, revision: str, lines: list[dict], create_pr: bool) -> dict:
        if create_pr:
            raise HubError(501, "this stand-in does not implement pull requests")
        if revision not in repo.refs:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        files = dict(repo.commits[repo.refs[revision]])
        summary = ""
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound"
                    )
            else:
                raise HubError(400, f"this stand-in takes regular files only, not {key!r}")
        oid = self._new_commit(repo, files, summary)
        repo.refs[revision] = oid
        return {"commitOid": oid, "commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "pullRequestUrl": None}


def _front_matter(content: str) -> object:
    match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    return {} if match is None else yaml.safe_load(match.group(1))


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after the test

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))  # a HEAD says the size of what a GET would send
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        with self.hub.lock:
            self.hub.requests.append((method, url.path))
        try:
            with self.hub.lock:
                self._route(method, url.path, parse_qs(url.query))
        except HubError as exc:
            headers = dict(exc.headers)
            if exc.code:
                headers["X-Error-Code"] = exc.code
            self._json(exc.status, {"error": str(exc), **exc.body}, {"X-Error-Message": str(exc), **headers})

    def _route(self, method: str, path: str, query: dict) -> None:
        hub = self.hub
        if method == "POST" and path in ("/api/repos/create", "/api/validate-yaml"):
            body = json.loads(self._body() or b"{}")
            if path == "/api/validate-yaml":
                try:
                    meta = _front_matter(body["content"])
                except yaml.YAMLError as exc:
                    return self._json(400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
                if not isinstance(meta, dict):
                    return self._json(
                        400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}
                    )
                return self._json(200, {"errors": [], "warnings": []})
            if not self._authorized():
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json(200, hub.create_repo(body))
        if match := API_REPO.match(path):
            repo_id, op, revision = match["repo"], match["op"], unquote(match["rev"])
            writing = method == "POST"
            if writing and not self._authorized():
                raise HubError(401, "Invalid credentials in Authorization header")
            repo = hub.repo(repo_id, self._authorized())
            if op == "tree" and method == "GET":
                files = repo.commits[hub.commit_of(repo, revision)]
                entries = [
                    {"type": "file", "path": p, "size": len(b), "oid": git_blob_sha1(b)}
                    for p, b in files.items()
                ]
                return self._json(200, entries)
            if op == "preupload" and writing:
                hub.commit_of(repo, revision)
                files = json.loads(self._body())["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._json(200, {"files": modes})
            if op == "commit" and writing:
                lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
                return self._json(200, hub.commit(repo, repo_id, revision, lines, "create_pr" in query))
            if op == "branch" and writing:
                body = json.loads(self._body() or b"{}")
                if revision in repo.refs:
                    raise HubError(409, f"Reference {revision} already exists")
                repo.refs[revision] = hub.commit_of(repo, body.get("startingPoint") or "main")
                return self._json(200, {})
        if (match := RESOLVE.match(path)) and method in ("GET", "HEAD"):
            repo = hub.repo(match["repo"], self._authorized())
            oid = hub.commit_of(repo, unquote(match["rev"]))
            filename = unquote(match["file"])
            data = repo.commits[oid].get(filename)
            if data is None:
                raise HubError(404, f"{filename} does not exist", "EntryNotFound", {"X-Repo-Commit": oid})
            headers = {
                "X-Repo-Commit": oid,
                "ETag": f'"{git_blob_sha1(data)}"',
                "Content-Type": "application/octet-stream",
            }
            return self._send(200, data, headers, head=method == "HEAD")
        hub.unhandled.append((method, path))
        raise HubError(404, f"the stand-in Hub does not implement {method} {path}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")


@contextlib.contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, home: Path, token: str | None = None) -> Iterator[HubStandIn]:
    """A stand-in Hub that the client reaches as if ``HF_ENDPOINT`` named it, online, with its cache under ``home``.

    Offline mode is off only while this lasts (``monkeypatch`` undoes it); the default cache and hf_xet's
    logs go under ``home``, so nothing outside the test's folder is written.
    """
    with HubStandIn(token=token) as server:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)  # anything not given endpoint= lands here too
        template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
        monkeypatch.setenv("HF_HOME", str(home))  # where hf_xet keeps its logs
        yield server
