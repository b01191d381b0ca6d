"""URLs of the Django example: a cached page, a counter, a cache-backed session."""

from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache

VIEWS = {"page": 0}


def page(request: HttpRequest) -> JsonResponse:
    VIEWS["page"] += 1  # cached by the page cache: runs once per CACHE_MIDDLEWARE_SECONDS
    return JsonResponse({"rendered": VIEWS["page"]})


@never_cache
def hits(request: HttpRequest) -> JsonResponse:
    cache.add("hits", 0, timeout=None)
    return JsonResponse({"hits": cache.incr("hits")})


@never_cache
def visit(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


urlpatterns = [path("page", page), path("hits", hits), path("visit", visit)]
