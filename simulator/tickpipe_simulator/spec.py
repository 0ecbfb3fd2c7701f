"""What determines a simulated session: the input of both the server and the ground truth."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tickpipe_simulator.kinds import KINDS, MarketKind, MarketName
from tickpipe_simulator.symbols import DEFAULT_STOCKS, SymbolInfo

Profile = Literal["flat", "open"]
OPEN_BURST = 6.0  # the "open" profile starts at 6x the base rate ...
OPEN_DECAY_S = 300.0  # ... and decays towards 1x with this time constant (seconds)


@dataclass(frozen=True)
class MarketSpec:
    """Everything that determines a session's events (the ground truth's input)."""

    seed: int = 1
    symbols: tuple[SymbolInfo, ...] = DEFAULT_STOCKS
    rate: float = 1000.0  # expected trades + quotes per second, at profile level 1
    profile: Profile = "flat"
    start_ms: int = 0  # first second of the session (a whole second, Unix ms)
    session_seconds: int = 0  # 0 = endless
    trade_share: float = 0.4  # fraction of trades among trades + quotes (forex has quotes only)
    market: MarketName = "stocks"  # with symbols of that market (symbols.DEFAULTS)

    def __post_init__(self) -> None:
        if self.start_ms % 1000:
            raise ValueError(f"start_ms must be a whole second (got {self.start_ms})")
        if self.rate < 0 or not math.isfinite(self.rate):
            raise ValueError(f"rate must be a non-negative number (got {self.rate})")
        if not 0 <= self.trade_share <= 1:
            raise ValueError(f"trade_share must be within [0, 1] (got {self.trade_share})")
        if self.session_seconds < 0:
            raise ValueError(f"session_seconds must be >= 0 (got {self.session_seconds})")
        if not self.symbols:
            raise ValueError("symbols must not be empty")
        if self.market not in KINDS:
            raise ValueError(f"market must be one of {', '.join(KINDS)} (got {self.market!r})")

    @property
    def kind(self) -> MarketKind:
        return KINDS[self.market]

    def level(self, second: int) -> float:
        """The profile's rate multiplier in the session's `second`-th second."""
        if self.profile == "open":
            return 1.0 + (OPEN_BURST - 1.0) * math.exp(-second / OPEN_DECAY_S)
        return 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["symbols"] = [asdict(info) for info in self.symbols]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketSpec:
        """Inverse of `to_dict` (e.g. from the `session` of `GET /_sim/stats`)."""
        values = dict(data)
        values["symbols"] = tuple(SymbolInfo(**info) for info in data["symbols"])
        return cls(**values)
