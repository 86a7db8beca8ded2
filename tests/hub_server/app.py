"""A Hub-compatible test server: olah (offline, local git mirrors) for reads + our git write API.

One FastAPI app serves both. Our router is mounted first and holds
  * the write API olah refuses: repo create/delete, preupload, NDJSON commit, branch, tag, whoami;
  * thin guards in front of olah's read routes that give the Hub's error semantics
    (404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound) where olah's offline
    mirror mode answers a bare 401 for anything it cannot find, and the repo-info route without a
    revision, which olah's offline mode only answers from its download cache (never from mirrors).
Everything that exists is then served by olah's own route handlers reading the git mirrors.

Uploads are always answered ``uploadMode: regular`` by preupload: the client then sends file
bytes base64-encoded inside the commit NDJSON, no LFS/Xet round trip is needed, and olah reads
them as plain git blobs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from olah.configs import OlahConfig
from olah.server_api_routes import meta_proxy_common
from olah.server_file_routes import file_get_common, file_head_common
from olah.server_routes import router as olah_router

from .gitrepos import FileAdd, FileDelete, GitError, GitRepos

REPO_TYPES = {"model": "models", "dataset": "datasets", "space": "spaces"}
PLURALS = set(REPO_TYPES.values())
USER = "signal-test"


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    headers = {"x-error-message": message}
    if code:
        headers["x-error-code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _repo_url(base: str, plural: str, repo_id: str) -> str:
    prefix = "" if plural == "models" else f"{plural}/"
    return f"{base.rstrip('/')}/{prefix}{repo_id}"


def build_app(root: Path, token: str) -> FastAPI:
    """The server app. ``root`` holds olah's folders; ``token`` is the only accepted write token."""
    root = Path(root)
    repos = GitRepos(root / "mirrors")
    (root / "cache").mkdir(parents=True, exist_ok=True)
    config = OlahConfig()
    config.offline = True
    config.mirrors_path = [str(root / "mirrors")]
    config.repos_path = str(root / "cache")
    config.metadata_cache_ttl = 0

    class _Settings:  # olah reads request.app.state.app_settings.config
        pass

    settings = _Settings()
    settings.config = config  # type: ignore[attr-defined]

    app = FastAPI()
    app.state.app_settings = settings
    app.state.logger = None
    router = APIRouter()

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {token}"

    def find_repo(plural: str, namespace: str, name: str) -> Path | None:
        if plural not in PLURALS or not repos.exists(plural, namespace, name):
            return None
        return repos.path(plural, namespace, name)

    def git_error(exc: GitError) -> JSONResponse:
        return _error(exc.status, str(exc), exc.code)

    # ------------------------------------------------------------------ identity
    @router.get("/api/whoami-v2")
    async def whoami(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        return JSONResponse(
            {
                "type": "user",
                "name": USER,
                "fullname": USER,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            }
        )

    @router.post("/api/validate-yaml")
    async def validate_yaml(request: Request) -> Response:
        # Model cards (peft writes README.md) are checked before a commit: parse the front matter.
        import re

        import yaml

        content = (await request.json()).get("content", "")
        match = re.match(r"^\s*---\n(.*?)\n---", content, flags=re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as exc:
            return JSONResponse({"errors": [{"message": f"Invalid YAML: {exc}"}]}, status_code=400)
        if meta is not None and not isinstance(meta, dict):
            return JSONResponse({"errors": [{"message": "metadata must be a mapping"}]}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    # ------------------------------------------------------------------ repos
    @router.post("/api/repos/create")
    async def create_repo(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        body = await request.json()
        plural = REPO_TYPES.get(body.get("type") or "model")
        if plural is None:
            return _error(400, f"Invalid repo type {body.get('type')!r}")
        namespace = body.get("organization") or USER
        name = body.get("name") or ""
        repo_id = f"{namespace}/{name}"
        url = _repo_url(str(request.base_url), plural, repo_id)
        try:
            repos.create(plural, namespace, name)
        except GitError as exc:
            if exc.status == 409:
                return JSONResponse({"error": str(exc), "url": url}, status_code=409)
            return git_error(exc)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    @router.delete("/api/repos/delete")
    async def delete_repo(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        body = await request.json()
        plural = REPO_TYPES.get(body.get("type") or "model", "")
        repo = find_repo(plural, body.get("organization") or USER, body.get("name") or "")
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        import shutil

        with repos.lock:
            shutil.rmtree(repo)
        return Response(status_code=200)

    # ------------------------------------------------------------------ writes
    @router.post("/api/{plural}/{namespace}/{name}/preupload/{revision}")
    async def preupload(plural: str, namespace: str, name: str, revision: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        body = await request.json()
        existing = repos.list_files(repo, revision) if repos.resolve(repo, revision) else {}
        files = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                # The client skips re-uploading a file whose git blob sha1 matches this oid.
                "oid": existing.get(f["path"]),
            }
            for f in body.get("files", [])
        ]
        return JSONResponse({"files": files, "commitOid": repos.resolve(repo, revision)})

    @router.post("/api/{plural}/{namespace}/{name}/commit/{revision}")
    async def commit(plural: str, namespace: str, name: str, revision: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        header: dict[str, Any] = {}
        ops: list = []
        try:
            for line in (await request.body()).splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    if value.get("encoding", "base64") != "base64":
                        return _error(400, f"Unsupported encoding {value.get('encoding')!r}")
                    ops.append(FileAdd(value["path"], base64.b64decode(value["content"])))
                elif key == "deletedFile":
                    ops.append(FileDelete(value["path"]))
                elif key == "deletedFolder":
                    ops.append(FileDelete(value["path"], folder=True))
                elif key == "lfsFile":
                    # preupload never answers "lfs", so a well-behaved client never sends this.
                    return _error(400, "LFS files are not supported by this test server")
                else:
                    return _error(400, f"Unknown commit operation key {key!r}")
        except (ValueError, KeyError) as exc:
            return _error(400, f"Malformed commit payload: {exc}")
        message = header.get("summary", "")
        if header.get("description"):
            message += "\n\n" + header["description"]
        try:
            sha = repos.commit(repo, revision, ops, message, header.get("parentCommit"))
        except GitError as exc:
            return git_error(exc)
        url = _repo_url(str(request.base_url), plural, f"{namespace}/{name}")
        return JSONResponse(
            {"success": True, "commitOid": sha, "commitUrl": f"{url}/commit/{sha}", "pullRequestUrl": None}
        )

    @router.post("/api/{plural}/{namespace}/{name}/branch/{branch}")
    async def create_branch(plural: str, namespace: str, name: str, branch: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        raw = await request.body()
        body = json.loads(raw) if raw.strip() else {}
        try:
            repos.create_branch(repo, branch, body.get("startingPoint"))
        except GitError as exc:
            return git_error(exc)
        return JSONResponse({"success": True})

    @router.delete("/api/{plural}/{namespace}/{name}/branch/{branch}")
    async def delete_branch(plural: str, namespace: str, name: str, branch: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        try:
            repos.delete_branch(repo, branch)
        except GitError as exc:
            return git_error(exc)
        return JSONResponse({"success": True})

    @router.post("/api/{plural}/{namespace}/{name}/tag/{revision}")
    async def create_tag(plural: str, namespace: str, name: str, revision: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        body = await request.json()
        try:
            repos.create_tag(repo, body.get("tag", ""), revision, body.get("message"))
        except GitError as exc:
            return git_error(exc)
        return JSONResponse({"success": True})

    @router.delete("/api/{plural}/{namespace}/{name}/tag/{tag}")
    async def delete_tag(plural: str, namespace: str, name: str, tag: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid credentials in Authorization header")
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        try:
            repos.delete_tag(repo, tag)
        except GitError as exc:
            return git_error(exc)
        return JSONResponse({"success": True})

    # ------------------------------------------------------------------ read guards -> olah
    @router.get("/api/{plural}/{namespace}/{name}")
    @router.head("/api/{plural}/{namespace}/{name}")
    async def repo_info(plural: str, namespace: str, name: str, request: Request) -> Response:
        return await repo_info_at(plural, namespace, name, "main", request)

    @router.get("/api/{plural}/{namespace}/{name}/revision/{revision}")
    @router.head("/api/{plural}/{namespace}/{name}/revision/{revision}")
    async def repo_info_at(plural: str, namespace: str, name: str, revision: str, request: Request) -> Response:
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        if repos.resolve(repo, revision) is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return await meta_proxy_common(
            request.app, plural, namespace, name, revision, request.method.lower(),
            request.headers.get("authorization"),
        )

    @router.get("/api/{plural}/{namespace}/{name}/commits/{revision}")
    async def list_commits(plural: str, namespace: str, name: str, revision: str) -> Response:
        # olah's offline answer lacks authors[].user and puts the whole message in the title.
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        if repos.resolve(repo, revision) is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return JSONResponse(
            [
                {
                    "id": c["id"],
                    "title": c["title"],
                    "message": c["message"],
                    "authors": [{"user": c["author"], "avatar": None}],
                    "date": c["date"],
                }
                for c in repos.log(repo, revision)
            ]
        )

    async def resolve_file(plural: str, namespace: str, name: str, revision: str, path: str, request: Request):
        repo = find_repo(plural, namespace, name)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        sha = repos.resolve(repo, revision)
        if sha is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if path not in repos.list_files(repo, sha):
            return _error(404, f"Entry not found: {path}", "EntryNotFound")
        handler = file_head_common if request.method == "HEAD" else file_get_common
        # olah answers with the resolved commit; the client needs it to pin its cache.
        response = await handler(request.app, plural, namespace, name, sha, path, request)
        response.headers["x-repo-commit"] = sha
        return response

    def typed_resolver(plural: str):
        async def resolve_typed(namespace: str, name: str, revision: str, path: str, request: Request) -> Response:
            return await resolve_file(plural, namespace, name, revision, path, request)

        return resolve_typed

    for plural in ("datasets", "spaces"):
        router.add_api_route(
            f"/{plural}/{{namespace}}/{{name}}/resolve/{{revision}}/{{path:path}}",
            typed_resolver(plural),
            methods=["GET", "HEAD"],
        )

    @router.get("/{namespace}/{name}/resolve/{revision}/{path:path}")
    @router.head("/{namespace}/{name}/resolve/{revision}/{path:path}")
    async def resolve_model(namespace: str, name: str, revision: str, path: str, request: Request) -> Response:
        return await resolve_file("models", namespace, name, revision, path, request)

    app.include_router(router)
    app.include_router(olah_router)
    return app
