"""The single page of the browser client. It holds no data: the page's JavaScript
signs in and loads everything over the REST API and the WebSocket."""
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    return render(request, "web/chat.html")
