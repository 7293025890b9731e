#!/usr/bin/env python3
"""A scripted OpenAI-compatible chat-completions server for agent tests (standard library only).

It stands in for a model API so that a real agent client (mini-swe-agent through litellm and
the openai client) can run end to end with no real model. Each answer is an assistant message
with one ``bash`` tool call and an OpenAI-style ``usage`` object, chosen by a script:

``edit``
    Step 1 runs ``--edit-command`` (a real edit in the agent's working directory), step 2
    runs ``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``, mini-swe-agent's way to submit.
    Any later request (there should be none) is answered by submitting again.
``forever``
    Never submits: every answer is one more harmless command, each billed
    ``--completion-tokens`` tokens, so only a budget can stop the agent.

The step is the number of assistant messages already in the request, so the server keeps
no conversation state and a retried request gets the same answer. With ``--api-key`` a request
without that bearer key gets 401. Every request is logged as one JSON line on stdout
(``docker logs`` of the server's container shows them).

Run: ``python3 model_server.py --script edit --edit-command "sed -i ..." --port 8000``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
SCRIPTS = ("edit", "forever")


def estimate_tokens(messages: Any) -> int:
    """A deterministic stand-in for a tokenizer: about four characters a token."""
    return max(1, len(json.dumps(messages)) // 4)


class Script:
    """What the scripted model says at each step."""

    def __init__(self, name: str, edit_command: str, completion_tokens: int) -> None:
        if name not in SCRIPTS:
            raise ValueError(f"unknown script {name!r}; known: {SCRIPTS}")
        if name == "edit" and not edit_command:
            raise ValueError("the edit script needs --edit-command")
        self.name = name
        self.edit_command = edit_command
        self.completion_tokens = completion_tokens

    def command(self, step: int) -> tuple[str, str]:
        """(reasoning text, bash command) for step ``step`` (0-based)."""
        if self.name == "edit":
            if step == 0:
                return "I will make the requested edit.", self.edit_command
            return "The edit is done; submitting.", SUBMIT
        return f"Still investigating (step {step + 1}).", f"echo still working, step {step + 1}"


def completion(script: Script, request: dict[str, Any], serial: int) -> dict[str, Any]:
    messages = request.get("messages") or []
    step = sum(1 for message in messages if message.get("role") == "assistant")
    content, command = script.command(step)
    prompt_tokens = estimate_tokens(messages)
    completion_tokens = script.completion_tokens
    return {
        "id": f"chatcmpl-scripted-{serial}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or "scripted",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": [
                        {
                            "id": f"call_{serial}",
                            "type": "function",
                            "function": {
                                "name": "bash",
                                "arguments": json.dumps({"command": command}),
                            },
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # one JSON line per request instead (see _log)

    def _log(self, **fields: Any) -> None:
        line = json.dumps({"method": self.command, "path": self.path, **fields})
        with self.server.lock:
            print(line, flush=True)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", "/v1/models", "/models"):
            self._log(status=200)
            self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            return
        self._log(status=404)
        self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        expected = self.server.api_key
        if expected and self.headers.get("Authorization") != f"Bearer {expected}":
            self.rfile.read(length)
            self._log(status=401)
            self._send(401, {"error": {"message": "bad API key", "type": "invalid_api_key"}})
            return
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            self._log(status=400)
            self._send(400, {"error": {"message": f"bad JSON: {exc}", "type": "invalid_request"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._log(status=404)
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        with self.server.lock:
            self.server.serial += 1
            serial = self.server.serial
        body = completion(self.server.script, request, serial)
        call = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        self._log(status=200, serial=serial, command=json.loads(call)["command"], **body["usage"])
        self._send(200, body)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], script: Script, api_key: str = "") -> None:
        super().__init__(address, Handler)
        self.script = script
        self.api_key = api_key
        self.lock = threading.Lock()
        self.serial = 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", choices=SCRIPTS, required=True)
    parser.add_argument("--edit-command", default="", help="the edit script's bash command")
    parser.add_argument("--completion-tokens", type=int, default=40)
    parser.add_argument("--api-key", default="", help="answer 401 unless this bearer key comes")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        script = Script(args.script, args.edit_command, args.completion_tokens)
    except ValueError as exc:
        parser.error(str(exc))
    server = ModelServer((args.host, args.port), script, args.api_key)
    print(json.dumps({"listening": server.server_address[:2], "script": script.name}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
