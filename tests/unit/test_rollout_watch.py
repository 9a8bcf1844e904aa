"""The rollout watch's recovery from an expired resourceVersion (410): the fresh list
replaces what the watch knew, so an object deleted during the gap is reported DELETED
(else rollout-test waited for an old pod that was already gone until --timeout)."""

from __future__ import annotations

from typing import Any

from kubectl_meshcfg.kube import rollout as api_rollout


class ListingApi:
    """Answers the relist's one GET with a fixed page (the only call _relist makes)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.calls = items, 0

    def request(self, method: str, *_: Any) -> dict[str, Any]:
        assert method == "GET"
        self.calls += 1
        return {"items": self.items, "metadata": {"resourceVersion": "900"}}


def pod(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version}}


def test_an_object_deleted_while_the_watch_was_too_old_is_reported_deleted() -> None:
    seen: list[tuple[str, str]] = []
    api = ListingApi([pod("b", "850"), pod("c", "860")])
    watch = api_rollout.Watch(api, api_rollout.PODS, "ns", {},  # type: ignore[arg-type]
                              lambda kind, obj, _t: seen.append((kind, obj["metadata"]["name"])))
    watch._known = {"uid-a": pod("a", "100"), "uid-b": pod("b", "100")}
    watch._deliver({"type": "ADDED", "object": pod("d", "200")}, "100")
    watch._deliver({"type": "DELETED", "object": pod("d", "300")}, "200")
    version = watch._deliver({"type": "ERROR", "object": {"code": 410}}, "300")
    assert version == "900" and api.calls == 1
    assert seen == [("ADDED", "d"), ("DELETED", "d"),
                    ("DELETED", "a"), ("MODIFIED", "b"), ("MODIFIED", "c")]
    # what the watch knows now is the list: a second expiry reports nothing new as gone
    seen.clear()
    api.items = [pod("c", "950")]
    watch._deliver({"type": "ERROR", "object": {"code": 410}}, "900")
    assert seen == [("DELETED", "b"), ("MODIFIED", "c")]
