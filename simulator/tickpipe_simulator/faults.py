"""Fault injection: what can go wrong on a connection, on demand.

The same JSON object arms a fault at start (`--fault '{...}'`, repeatable) and at run time
(`POST /_sim/fault`). Examples:

    {"action": "close", "code": 1011, "after_frames": 500}        abnormal close after 500 data frames
    {"action": "close", "code": 1000}                             a normal close, now
    {"action": "pause", "seconds": 5}                             the feed stalls 5 s (nothing lost)
    {"action": "malformed", "variant": "truncated"}               one frame that is not JSON
    {"action": "evict"}                                           `max_connections` status, then close
    {"action": "force_disconnect"}                                `force_disconnect` status, then close

Where: `connection` (an id from `/_sim/stats`) or `target`: "open" (every open connection; the
HTTP default), "next" (the next connection to authenticate; the flag default) or "every" (each
connection from now on, e.g. a feed that drops every 1000 frames).
`after_frames` counts data frames written to that connection after the fault is armed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FaultAction = Literal["close", "pause", "malformed", "evict", "force_disconnect"]
MalformedVariant = Literal["truncated", "missing_field", "high_below_low"]
POLICY_CLOSE = 1008  # the code the simulator closes with after a status such as slow_consumer


class Fault(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: FaultAction
    code: Literal[1000, 1001, 1008, 1011] = Field(1011, description="close code (action close)")
    after_frames: int = Field(0, ge=0, description="data frames to write first")
    seconds: float = Field(5.0, gt=0, le=3600, description="pause length (action pause)")
    variant: MalformedVariant = "truncated"
    connection: int | None = Field(None, ge=1, description="one connection id")
    target: Literal["open", "next", "every"] = "open"


class FaultError(ValueError):
    """A fault description that cannot be used; the message names the field."""


def parse_fault(raw: str | bytes | dict[str, object], default_target: str = "open") -> Fault:
    """Validate a fault from JSON text or a dict; FaultError names each bad field."""
    try:
        if isinstance(raw, dict):
            data = dict(raw)
        else:
            data = Fault.model_validate_json(raw).model_dump(exclude_unset=True)
        data.setdefault("target", default_target)
        return Fault.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'fault'}: {error['msg']}"
            for error in exc.errors()
        )
        raise FaultError(f"invalid fault: {problems}") from None


# The bad frames of action "malformed": each lands in a different DLQ reason downstream.
MALFORMED_FRAMES: dict[str, bytes] = {
    "truncated": b'[{"ev":"T","sym":"AAPL","x":4,"p":1',
    "missing_field": b'[{"ev":"T","sym":"AAPL","x":4,"i":"0","z":3,"s":100,"t":0,"q":0}]',
    "high_below_low": (
        b'[{"ev":"A","sym":"AAPL","v":100,"av":100,"op":10.0,"vw":10.0,"o":10.0,"c":10.0,'
        b'"h":9.0,"l":11.0,"a":10.0,"z":100,"s":0,"e":1000}]'
    ),
}
