"""``tuneport jobs cleanup`` on Vertex AI: undeploy the tuned model from its endpoint, delete the
endpoint, then the model (REST through httpx, long-running operations waited for)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tuneport.errors import ProviderError
from tuneport.progress import NullProgress, Progress
from tuneport.providers.vertex.auth import request_headers
from tuneport.providers.vertex.client import as_int
from tuneport.providers.vertex.errors import connection_error, map_status
from tuneport.providers.vertex.jobs import VertexJobs
from tuneport.retry import call_with_retry
from tuneport.schemas import JobRef

if TYPE_CHECKING:
    import httpx

REST_API_VERSION = "v1"


class VertexCleanup(VertexJobs):
    """Remove what a finished job left deployed."""

    def _rest(self, http: httpx.Client, method: str, name: str, body: Any = None) -> Any:
        """One REST call on a resource name; 404 -> ``None``; other errors mapped."""
        import httpx

        url = f"{self.rest_base_url.rstrip('/')}/{REST_API_VERSION}/{name}"

        def send() -> Any:
            response = http.request(
                method, url, json=body, headers=request_headers(self.credentials)
            )
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json() if response.content else {}

        try:
            return call_with_retry(
                send, policy=self._policy, sleep=self._sleep, where=f"Vertex AI at {url}"
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            status, message = None, exc.response.text
            try:
                err = exc.response.json().get("error", {})
                status, message = err.get("status"), err.get("message", message)
            except ValueError:
                pass
            raise map_status(
                code, status, message, project=self._known_project(), location=self.location
            ) from None
        except httpx.TransportError as exc:
            raise connection_error(exc, self.rest_base_url) from None

    def _wait(self, http: httpx.Client, operation: Any, what: str) -> None:
        """Poll a long-running operation until done; raise its error."""
        if not isinstance(operation, Mapping):
            return
        from tuneport.retry import default_interval

        deadline = self._clock() + self.options.operation_timeout
        delay = min(1.0, default_interval())  # $TUNEPORT_POLL_INTERVAL=0: no waiting (tests)
        while not operation.get("done"):
            name = operation.get("name")
            if not name:
                return
            if self._clock() > deadline:
                raise ProviderError(
                    f"timed out waiting for Vertex AI to {what}",
                    hint="run `tuneport jobs cleanup` again later",
                )
            self._sleep(delay)
            delay = min(delay * 2, 15.0)
            operation = self._rest(http, "GET", str(name)) or {"done": True}
        err = operation.get("error")
        if err:
            raise map_status(
                as_int(err.get("code")),
                None,
                str(err.get("message", "")),
                project=self._known_project(),
                location=self.location,
            )

    def cleanup(self, job: JobRef, progress: Progress | None = None) -> list[str]:
        """Undeploy every model from the tuned endpoint, delete the endpoint, then the model."""
        import httpx

        shown = (progress or NullProgress()).note
        removed: list[str] = []

        def note(thing: str) -> None:  # what was deleted; the CLI prints "deleted <thing>"
            removed.append(thing)
            shown(f"deleted {thing}")

        remote = self._get(job.remote_id)
        tuned = remote.tuned_model
        endpoint = getattr(tuned, "endpoint", None)
        model = getattr(tuned, "model", None)
        with httpx.Client(timeout=self.options.timeout) as http:
            if endpoint:
                info = self._rest(http, "GET", endpoint)
                for deployed in (info or {}).get("deployedModels", []):
                    op = self._rest(
                        http,
                        "POST",
                        f"{endpoint}:undeployModel",
                        {"deployedModelId": deployed.get("id")},
                    )
                    self._wait(http, op, f"undeploy {deployed.get('id')} from {endpoint}")
                    note(f"deployed model {deployed.get('id')} on endpoint {endpoint}")
                if info is not None:
                    self._wait(http, self._rest(http, "DELETE", endpoint), f"delete {endpoint}")
                    note(f"endpoint {endpoint}")
            if model:
                base = str(model).split("@", 1)[0]
                op = self._rest(http, "DELETE", base)
                if op is not None:
                    self._wait(http, op, f"delete {base}")
                    note(f"model {base}")
        return removed


__all__ = ["VertexCleanup"]
