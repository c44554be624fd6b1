"""The single page of the browser client. It holds no data: the page's JavaScript
signs in and loads everything over the REST API and the WebSocket."""
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    # Limits the page enforces before the server would refuse (the server still checks).
    return render(request, "web/chat.html", {"max_content_length": settings.MESSAGE_MAX_CONTENT_LENGTH})
