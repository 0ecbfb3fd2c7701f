"""The websocket protocol as Polygon speaks it: connected, auth, subscribe, unsubscribe.

    server: [{"ev":"status","status":"connected","message":"Connected Successfully"}]
    client: {"action":"auth","params":"KEY"}          -> auth_success | auth_failed (then close)
    client: {"action":"subscribe","params":"A.AAPL,T.*"} -> one "success" status per topic
    (no auth within auth_timeout seconds)              -> auth_timeout (then close)

Every answer goes through the connection's queue, so statuses and data keep their order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web

from tickpipe_simulator.connection import Connection
from tickpipe_simulator.faults import POLICY_CLOSE
from tickpipe_simulator.hub import Hub
from tickpipe_simulator.topics import TopicError, parse_topic, split_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolOptions:
    api_keys: frozenset[str]  # empty: any non-empty key is accepted
    auth_timeout_s: float
    max_buffer_bytes: int
    paced: bool
    compression: bool


def key_accepted(key: object, api_keys: frozenset[str]) -> bool:
    if not isinstance(key, str) or not key:
        return False
    return not api_keys or key in api_keys


async def serve_connection(request: web.Request, hub: Hub, options: ProtocolOptions) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=options.compression, max_msg_size=1 << 20)
    if not ws.can_prepare(request).ok:
        return web.json_response(
            {
                "status": "ERROR",
                "error": f"{request.path} is a websocket endpoint: connect with a websocket client",
            },
            status=400,
        )
    await ws.prepare(request)
    conn = Connection(
        hub.new_id(), hub.market, ws, request.transport, options.max_buffer_bytes, options.paced
    )
    hub.add(conn)
    conn.writer = asyncio.create_task(conn.run_writer(), name=f"ws-writer-{conn.id}")
    conn.send_status("connected", "Connected Successfully")
    log.info("connection opened", extra={"fields": {"connection": conn.id, "peer": request.remote}})
    deadline = asyncio.get_running_loop().time() + options.auth_timeout_s
    try:
        while not conn.closing:
            timeout = None if conn.authenticated else max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                conn.kick("auth_timeout", f"No authentication within {options.auth_timeout_s:g} s; closing.")
                break
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                handle_message(conn, hub, msg.data, options)
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                break
    finally:
        if conn.closing and conn.writer is not None:
            await asyncio.shield(conn.writer)
        elif conn.writer is not None:
            conn.writer.cancel()
        conn.mark_disconnected(ws.close_code, "client closed")
        hub.subscriptions_changed()
        log.info(
            "connection closed",
            extra={"fields": {"connection": conn.id, "code": conn.close_code, "reason": conn.close_reason}},
        )
    return ws


def handle_message(conn: Connection, hub: Hub, data: str | bytes, options: ProtocolOptions) -> None:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        conn.send_status("error", "invalid message: not JSON")
        return
    if not isinstance(message, dict) or not isinstance(message.get("action"), str):
        conn.send_status("error", 'invalid message: expected {"action": ..., "params": ...}')
        return
    action, params = message["action"], message.get("params")
    if action == "auth":
        if conn.authenticated:
            conn.send_status("auth_success", "authenticated")
        elif key_accepted(params, options.api_keys):
            conn.authenticated_at = time.time()
            conn.send_status("auth_success", "authenticated")
            hub.authenticated(conn, str(params))
        else:
            log.info("authentication failed", extra={"fields": {"connection": conn.id}})
            conn.kick("auth_failed", "authentication failed", POLICY_CLOSE)
        return
    if not conn.authenticated:
        conn.send_status("error", f"not authorized: authenticate before {action!r}")
        return
    if action not in ("subscribe", "unsubscribe"):
        conn.send_status("error", f"unknown action {action!r} (known: auth, subscribe, unsubscribe)")
        return
    if not isinstance(params, str):
        conn.send_status("error", f'invalid {action}: params must be a string such as "A.AAPL,T.*"')
        return
    for topic in split_topics(params):
        try:
            parse_topic(topic, hub.event_types)
        except TopicError as exc:
            conn.send_status("error", str(exc))
            continue
        if action == "subscribe":
            conn.topics.add(topic)
            conn.send_status("success", f"subscribed to: {topic}")
        else:
            conn.topics.discard(topic)
            conn.send_status("success", f"unsubscribed to: {topic}")
    hub.subscriptions_changed()
