"""Alert e-mails (issue 14.5): a run's message is text. Whatever HTML it holds arrives
escaped in the mail's HTML part, through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backwatch.services.hub import Hub
from backwatch.web.app import create_app
from tests.conftest import free_port, make_settings

INJECTED = (
    '<a href="https://evil.example/login">Re-enter your password</a><img src=x onerror=alert(1)>'
)


class SMTPSink:
    """An SMTP server that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def sink() -> Any:
    smtp = SMTPSink()
    yield smtp
    smtp.controller.stop()


def test_a_run_message_cannot_inject_html_into_the_alert_mail(
    tmp_path: Path, db_url: str, sink: SMTPSink
) -> None:
    mail_url = f"mailto://127.0.0.1:{sink.port}?from=backwatch@example.com&to=admin@example.com"
    config = tmp_path / "backwatch.toml"
    config.write_text(f'[[notify]]\nurls = ["{mail_url}"]\nseverities = ["critical"]\n')
    settings = make_settings(tmp_path / "data", db_url, BACKWATCH_CONFIG=str(config))
    hub = Hub(settings, grouped=True)
    app = create_app(settings, hub=hub)
    try:
        with TestClient(app) as client:
            auth = {"Authorization": f"Bearer {settings.token_file.read_text().strip()}"}
            body = {
                "job": "db",
                "status": "failed",
                "started_at": hub.now(),
                "message": INJECTED,
            }
            assert client.post("/api/v1/runs", json=body, headers=auth).status_code == 201
            client.portal.call(app.state.alert_tasks.tick)
            client.portal.call(app.state.alert_tasks.deliver)
    finally:
        hub.close()
    [envelope] = sink.messages
    mail = email.message_from_bytes(envelope.content)
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in mail.walk()
        if not p.is_multipart()
    }
    # the text keeps the message as it was written; an HTML part, if any, escapes it
    assert INJECTED in parts["text/plain"]
    html = parts.get("text/html", "")
    assert "<a href" not in html and "<img" not in html


def test_an_html_mail_escapes_the_message(sink: SMTPSink) -> None:
    """A mail URL asking for HTML (``format=html``) gets the text escaped into HTML."""
    from backwatch.notify.render import render
    from backwatch.notify.transport import send

    alert = {"rule": "failed", "job": "db", "severity": "critical", "message": INJECTED}
    title, body = render(alert, "open", "http://127.0.0.1:5001")
    send(
        f"mailto://127.0.0.1:{sink.port}?from=bw@example.com&to=admin@example.com&format=html",
        title,
        body,
        severity="critical",
    )
    [envelope] = sink.messages
    mail = email.message_from_bytes(envelope.content)
    [html] = [
        p.get_payload(decode=True).decode()
        for p in mail.walk()
        if p.get_content_type() == "text/html"
    ]
    assert "<a href" not in html and "<img" not in html
    assert "&lt;a&nbsp;href=&quot;https://evil.example" in html and "alert(1)&gt;" in html
